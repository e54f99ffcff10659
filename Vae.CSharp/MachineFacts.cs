namespace Vae;

/// <summary>Facts about the machine an experiment ran on, so that times can be read.</summary>
/// <param name="Processors">Logical processors.</param>
/// <param name="Cpu">The processor's model name, where the system reports it.</param>
/// <param name="OperatingSystem">The operating system.</param>
/// <param name="Framework">The .NET runtime.</param>
/// <param name="LibTorch">libtorch's version.</param>
/// <param name="TorchThreads">The libtorch threads used.</param>
public sealed record MachineFacts(int Processors, string Cpu, string OperatingSystem, string Framework, string LibTorch, int TorchThreads)
{
    /// <summary>This machine's facts.</summary>
    public static MachineFacts Current()
    {
        string cpu = "unknown";
        if (File.Exists("/proc/cpuinfo"))
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? cpu;
        return new(Environment.ProcessorCount, cpu, System.Runtime.InteropServices.RuntimeInformation.OSDescription,
                   System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription, Vae.Core.Torch.load(), Vae.Core.Torch.threads());
    }
}

/// <summary>What the library was built from.</summary>
public static class BuildInfo
{
    /// <summary>The source commit this library was built from (from its informational version), or null.</summary>
    public static string? Commit { get; } =
        typeof(BuildInfo).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion.Split('+') is [_, var commit] ? commit : null;
}
