using System.Runtime.CompilerServices;
using Vae.Data;

namespace Vae.Tests;

/// <summary>Shared set-up: torch single-threaded, paths, the data cache.</summary>
public static class TestEnvironment
{
    /// <summary>Tests run libtorch on one thread (two busy threads on two cores collapse throughput).</summary>
    [ModuleInitializer]
    internal static void Initialise() => Vae.Core.Torch.setThreads(1);

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

    /// <summary>A new empty temporary directory.</summary>
    public static string NewTempDirectory()
    {
        string dir = Path.Combine(Path.GetTempPath(), "vae-tests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return dir;
    }
}
