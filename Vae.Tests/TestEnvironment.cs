using System.Runtime.CompilerServices;
using Vae.Data;

namespace Vae.Tests;

/// <summary>Shared set-up: torch single-threaded, paths, the data cache.</summary>
public static class TestEnvironment
{
    /// <summary>Tests run libtorch on one thread (two busy threads on two cores collapse throughput), with MKL's
    /// kernels chosen as <c>vae</c> chooses them (NativeTuning.useMklAvx512), before any multiply.</summary>
    [ModuleInitializer]
    internal static void Initialise()
    {
        Vae.Core.Torch.setThreads(1);
        MklChoice = Vae.NativeTuning.Apply(Vae.NativeTuningOptions.FromEnvironment() with { RetainFreedMemory = false }).Mkl;
    }

    /// <summary>What the start-up did to MKL's kernel choice.</summary>
    public static Vae.MklKernelChoice MklChoice { get; private set; } = null!;

    /// <summary>Whether MKL's float32 multiplies run its AVX-512 kernels here: on AMD when the start-up chose them, on
    /// Intel whenever the CPU has AVX-512 F, BW, DQ and VL, unless <c>MKL_ENABLE_INSTRUCTIONS</c> caps MKL below AVX-512.
    /// Float32 trajectories round differently on each path.</summary>
    public static bool MklRunsAvx512 =>
        !(Environment.GetEnvironmentVariable("MKL_ENABLE_INSTRUCTIONS") is { Length: > 0 } cap && !cap.StartsWith("AVX512", StringComparison.OrdinalIgnoreCase))
        && (MklChoice.Avx512
            || (System.Runtime.Intrinsics.X86.X86Base.IsSupported && CpuVendor == "GenuineIntel"
                && System.Runtime.Intrinsics.X86.Avx512F.IsSupported && System.Runtime.Intrinsics.X86.Avx512BW.IsSupported
                && System.Runtime.Intrinsics.X86.Avx512DQ.IsSupported && System.Runtime.Intrinsics.X86.Avx512F.VL.IsSupported));

    /// <summary>The CPU's vendor string (CPUID leaf 0), e.g. GenuineIntel or AuthenticAMD.</summary>
    public static string CpuVendor { get; } = Vendor();

    static string Vendor()
    {
        var (_, b, c, d) = System.Runtime.Intrinsics.X86.X86Base.CpuId(0, 0);
        return string.Concat(new[] { b, d, c }.Select(r => System.Text.Encoding.ASCII.GetString(BitConverter.GetBytes(r))));
    }

    /// <summary>The repository's root (the folder holding Vae.sln).</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Vae.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Vae.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The NuGet package folder this build restored from (recorded at build time).</summary>
    public static string NuGetPackageRoot =>
        typeof(TestEnvironment).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .Cast<System.Reflection.AssemblyMetadataAttribute>().Single(a => a.Key == "NuGetPackageRoot").Value!;

    /// <summary>Options for the user's data cache (filled by the test command's set-up), downloads allowed.</summary>
    public static DataSetOptions CachedData { get; } = new();

    /// <summary>The build configuration of this test assembly (bin/Release or bin/Debug), which built the rest of the solution.</summary>
    public static string Configuration =>
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release";

    /// <summary>The vae program this solution built (run with <c>dotnet exec</c>), as the tests start it in processes of its own.</summary>
    public static string CliDll => Path.Combine(RepositoryRoot, "Vae.Cli", "bin", Configuration, "net10.0", "Vae.Cli.dll");

    /// <summary>Runs a program to completion (at most 5 minutes) with libtorch single-threaded and the extra environment
    /// variables; returns its exit code and its standard output and error.</summary>
    public static async Task<(int ExitCode, string Output, string Errors)> RunProcessAsync(
        string program, IEnumerable<string> args, string workingDirectory, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new System.Diagnostics.ProcessStartInfo(program, args) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["OMP_NUM_THREADS"] = "1";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try { await process.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException)
        {
            // A child that outlives the test would hold its files and a core: it and its own children go with the test.
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"{program} {string.Join(' ', args)} ran past 5 minutes and was killed; its output:\n{await stdout}\n{await stderr}");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>A new empty temporary directory.</summary>
    public static string NewTempDirectory()
    {
        string dir = Path.Combine(Path.GetTempPath(), "vae-tests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        TemporaryDirectories.Add(dir);
        return dir;
    }

    /// <summary>Every directory <see cref="NewTempDirectory"/> made, removed when the test process exits (tests may
    /// hand theirs to child processes and fixtures that outlive the test itself).</summary>
    static readonly System.Collections.Concurrent.ConcurrentBag<string> TemporaryDirectories = RemovedAtExit();

    static System.Collections.Concurrent.ConcurrentBag<string> RemovedAtExit()
    {
        var made = new System.Collections.Concurrent.ConcurrentBag<string>();
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (string dir in made)
                try { Directory.Delete(dir, recursive: true); }
                catch (IOException) { } // a child process killed mid-write may leave a file that vanishes under us
                catch (UnauthorizedAccessException) { }
        };
        return made;
    }
}
