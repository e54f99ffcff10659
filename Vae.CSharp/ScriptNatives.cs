using System.Reflection;
using System.Runtime.InteropServices;

namespace Vae;

/// <summary>SkiaSharp's natives for hosts that do not list them among their dependencies (dotnet fsi, notebooks): a
/// build puts them in runtimes/&lt;rid&gt;/native beside SkiaSharp.dll, where such a host does not look, so the
/// assemblies resolve them there. An application that lists them (vae, a project referencing Vae) loads them as usual.</summary>
public static class ScriptNatives
{
    static readonly Lazy<bool> Skia = new(() =>
        Resolve(typeof(SkiaSharp.SKBitmap).Assembly, "libSkiaSharp") & (Optional("HarfBuzzSharp") is not { } harfBuzz || Resolve(harfBuzz, "libHarfBuzzSharp")));

    /// <summary>Makes SkiaSharp (and HarfBuzzSharp, where the host has it: ScottPlot's text) find their natives beside
    /// their assemblies; call before their first use.</summary>
    public static void EnsureSkia() => _ = Skia.Value;

    /// <summary>The named assembly where the host can load it, else null (Vae itself does not depend on HarfBuzzSharp).</summary>
    static Assembly? Optional(string name)
    {
        try { return Assembly.Load(name); }
        catch (FileNotFoundException) { return null; }
    }

    static bool Resolve(Assembly assembly, string library)
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux) || string.IsNullOrEmpty(assembly.Location)) return false;
        string rid = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? "linux-arm64" : "linux-x64";
        string path = Path.Combine(Path.GetDirectoryName(assembly.Location)!, "runtimes", rid, "native", library + ".so");
        if (!File.Exists(path)) return false;
        try
        {
            NativeLibrary.SetDllImportResolver(assembly, (name, _, _) =>
                name == library && NativeLibrary.TryLoad(path, out var handle) ? handle : IntPtr.Zero);
            return true;
        }
        catch (InvalidOperationException) { return false; } // the assembly has a resolver of its own already
    }
}
