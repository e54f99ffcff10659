namespace Vae;

/// <summary>libtorch's threads and version.</summary>
public static class TorchRuntime
{
    /// <summary>libtorch's intra-op threads (one per core at most: two busy threads per core collapse throughput).</summary>
    public static int Threads
    {
        get => Vae.Core.Torch.threads();
        set => Vae.Core.Torch.setThreads(value);
    }

    /// <summary>Loads libtorch (its natives load lazily on first use) and returns its version.</summary>
    public static string LibTorchVersion => Vae.Core.Torch.load();
}

/// <summary>The process-wide speed settings <see cref="NativeTuning.Apply"/> can make.</summary>
public sealed record NativeTuningOptions
{
    /// <summary>Let MKL use its AVX-512 matrix-multiply kernels on an AMD CPU with AVX-512 (Zen 4 and later), where it
    /// would otherwise take its AVX2 kernels. Float32 results then differ from the AVX2 kernels' by rounding.</summary>
    public bool MklAvx512OnAmd { get; init; } = true;

    /// <summary>Make glibc's malloc keep freed memory for reuse instead of unmapping libtorch's per-step tensors and
    /// mapping them again each step. Linux only.</summary>
    public bool RetainFreedMemory { get; init; } = true;

    /// <summary>Both, unless the environment turns one off: <c>VAE_MKL=default</c> keeps MKL's own kernel choice (and so
    /// reproduces float32 results recorded with it), <c>VAE_MALLOC=default</c> glibc's own allocator settings.</summary>
    public static NativeTuningOptions FromEnvironment() => new()
    {
        MklAvx512OnAmd = Environment.GetEnvironmentVariable("VAE_MKL") != "default",
        RetainFreedMemory = Environment.GetEnvironmentVariable("VAE_MALLOC") != "default",
    };
}

/// <summary>The process-wide speed settings in one place, opt-in for a library user; <c>vae</c> applies them at
/// start-up (<c>--native-tuning off</c> keeps neither). Apply once, before any matrix multiply: MKL chooses its kernels
/// at its first call.</summary>
public static class NativeTuning
{
    /// <summary>Applies <paramref name="options"/> (default <see cref="NativeTuningOptions.FromEnvironment"/>) and
    /// reports what each setting did.</summary>
    public static NativeTuningReport Apply(NativeTuningOptions? options = null)
    {
        options ??= NativeTuningOptions.FromEnvironment();
        var mkl = options.MklAvx512OnAmd ? Describe(Vae.Core.NativeTuning.useMklAvx512()) : new MklKernelChoice(false, "MKL's own dispatch (not requested)");
        bool retains = options.RetainFreedMemory && Vae.Core.NativeTuning.retainFreedMemory();
        return Applied = new NativeTuningReport(mkl, retains);
    }

    /// <summary>What the last <see cref="Apply"/> in this process did, or null before one.</summary>
    public static NativeTuningReport? Applied { get; private set; }

    /// <summary>MKL's kernel path in this process, for records: the last <see cref="Apply"/>'s choice (or MKL's own
    /// dispatch) and whether the CPU has AVX-512, on which MKL's choice between its AVX-512 and AVX2 kernels turns.</summary>
    public static string KernelPath =>
        $"{Applied?.Mkl.Description ?? "MKL's own dispatch"}; AVX-512 {(System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? "present" : "absent")}";

    static MklKernelChoice Describe(Vae.Core.MklDispatch d) =>
        d is Vae.Core.MklDispatch.Unchanged u
            ? new MklKernelChoice(false, $"MKL's own dispatch ({u.reason})")
            : new MklKernelChoice(true, "MKL's AVX-512 kernels on this AMD CPU (its vendor check bypassed)");
}

/// <summary>What <see cref="NativeTuning.Apply"/> did.</summary>
/// <param name="Mkl">MKL's kernel choice.</param>
/// <param name="RetainsFreedMemory">Whether glibc's malloc now keeps freed memory for reuse.</param>
public sealed record NativeTuningReport(MklKernelChoice Mkl, bool RetainsFreedMemory)
{
    /// <summary>One line for reports: the kernel choice and the allocator.</summary>
    public string Description => $"{Mkl.Description}; {(RetainsFreedMemory ? "malloc keeps freed memory" : "glibc's default malloc")}";
}

/// <summary>MKL's kernel choice.</summary>
/// <param name="Avx512">Whether MKL now uses its AVX-512 kernels on this AMD CPU.</param>
/// <param name="Description">What was done, or why nothing was (another vendor, no AVX-512, not Linux x64, ...).</param>
public sealed record MklKernelChoice(bool Avx512, string Description);
