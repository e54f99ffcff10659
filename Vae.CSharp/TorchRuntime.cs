namespace Vae;

/// <summary>Process-wide libtorch settings that make training and evaluation faster. Call them once, at the start of
/// the program, before any tensor work: <c>vae</c> applies both at start-up.</summary>
public static class TorchRuntime
{
    /// <summary>Lets libtorch's MKL use its AVX-512 matrix-multiply kernels on an AMD CPU with AVX-512 (Zen 4 and later),
    /// where MKL would otherwise give it its AVX2 kernels (float32 multiplies here ran 2.2-2.5 times faster). Call it before
    /// the first matrix multiply: MKL chooses its kernels once. Float32 results then differ from MKL's AVX2 kernels' at
    /// the level of rounding. Returns whether the AVX-512 kernels are now in use, and why not otherwise.</summary>
    public static MklKernelChoice UseMklAvx512() => Describe(Vae.Core.Torch.useMklAvx512());

    /// <summary><see cref="UseMklAvx512"/> unless the environment variable <c>VAE_MKL</c> is <c>default</c>, which keeps
    /// MKL's own choice (and so reproduces float32 results recorded with it), as <c>vae</c> does at start-up.</summary>
    public static MklKernelChoice ConfigureMkl() => Describe(Vae.Core.Torch.configureMkl());

    static MklKernelChoice Describe(Vae.Core.MklDispatch d)
    {
        return d is Vae.Core.MklDispatch.Unchanged u
            ? new MklKernelChoice(false, $"MKL's own dispatch ({u.reason})")
            : new MklKernelChoice(true, "MKL's AVX-512 kernels on this AMD CPU (its vendor check bypassed)");
    }

    /// <summary>Makes glibc's malloc keep freed memory for reuse instead of unmapping libtorch's per-step tensors and
    /// mapping them again each step (a straightforward training loop ran 2-3 times slower that way here). Linux only;
    /// returns false where glibc is absent.</summary>
    public static bool RetainFreedMemory() => Vae.Core.Torch.retainFreedMemory();

    /// <summary>libtorch's intra-op threads (one per core at most: two busy threads per core collapse throughput).</summary>
    public static int Threads
    {
        get => Vae.Core.Torch.threads();
        set => Vae.Core.Torch.setThreads(value);
    }

    /// <summary>Loads libtorch (its natives load lazily on first use) and returns its version.</summary>
    public static string LibTorchVersion => Vae.Core.Torch.load();
}

/// <summary>What <see cref="TorchRuntime.UseMklAvx512"/> did.</summary>
/// <param name="Avx512">Whether MKL now uses its AVX-512 kernels on this AMD CPU.</param>
/// <param name="Description">What was done, or why nothing was (another vendor, no AVX-512, not Linux x64, ...).</param>
public sealed record MklKernelChoice(bool Avx512, string Description);
