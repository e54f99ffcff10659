using TorchSharp;
using Vae.Build;
using static TorchSharp.torch;

namespace Vae.Tests.Foundation;

public class LibTorchLoadsTests
{
    [Fact]
    public void LibTorchLoadsAndMultipliesMatrices()
    {
        Assert.StartsWith("2.10", Vae.Core.Torch.load());
        using var a = torch.tensor(new float[] { 1, 2, 3, 4 }, new long[] { 2, 2 });
        using var b = torch.tensor(new float[] { 5, 6, 7, 8 }, new long[] { 2, 2 });
        using var c = a.matmul(b);
        Assert.Equal(new float[] { 19, 22, 43, 50 }, c.data<float>().ToArray());
    }

    [Fact]
    public void TestsRunLibTorchSingleThreaded() => Assert.Equal(1, Vae.Core.Torch.threads());
}

public class LibTorchLoadFixTests
{
    const string Version = "GLIBCXX_3.4.32";
    const string NeedFile = "libstdc++.so.6";

    static string Original => Path.Combine(TestEnvironment.NuGetPackageRoot, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    static string BuildCopy => Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

    static HashSet<string> SystemVersions()
    {
        string lib = LibTorchLoadFix.FindSystemLibrary(NeedFile) ?? throw new InvalidOperationException("no system libstdc++");
        return new HashSet<string>(new ElfFile(File.ReadAllBytes(lib), lib).VersionDefinitions());
    }

    [Fact]
    public void TheOnlySymbolOfTheMissingVersionIsUnrelocated()
    {
        var elf = new ElfFile(File.ReadAllBytes(Original), Original);
        var need = Assert.Single(elf.VersionNeeds(), n => n.Version == Version);
        Assert.False(need.IsWeak);
        Assert.Equal(["_ZSt21ios_base_library_initv"], elf.SymbolsWithVersion(need.Index));
        Assert.DoesNotContain("_ZSt21ios_base_library_initv", elf.RelocatedSymbols());
        Assert.NotEmpty(elf.RelocatedSymbols());
    }

    [Fact]
    public void TheBuildOutputIsPatchedExactlyWhereTheSystemLacksTheVersion()
    {
        var original = File.ReadAllBytes(Original);
        var copy = File.ReadAllBytes(BuildCopy);
        var need = new ElfFile(copy, BuildCopy).VersionNeeds().Single(n => n.Version == Version);
        bool systemLacks = !SystemVersions().Contains(Version);
        Assert.Equal(systemLacks, need.IsWeak);
        Assert.Equal(original.Length, copy.Length);
        var differing = Enumerable.Range(0, original.Length).Where(i => original[i] != copy[i]).ToList();
        Assert.Equal(systemLacks ? [need.FlagsOffset] : new List<long>(), differing.Select(i => (long)i).ToList());
        // The NuGet cache's copy is never touched.
        Assert.False(new ElfFile(original, Original).VersionNeeds().Single(n => n.Version == Version).IsWeak);
    }

    [Fact]
    public void PlanWeakensTheMissingVersionOnceAndIsIdempotent()
    {
        var bytes = File.ReadAllBytes(Original);
        var system = new HashSet<string>(SystemVersions().Where(v => v != Version));
        var plan = LibTorchLoadFix.Plan(new ElfFile(bytes, Original), Original, NeedFile, system);
        Assert.Equal([Version], plan.ToWeaken.Select(n => n.Version));
        var patched = LibTorchLoadFix.Weaken(bytes, plan.ToWeaken);
        var again = LibTorchLoadFix.Plan(new ElfFile(patched, "patched"), "patched", NeedFile, system);
        Assert.Empty(again.ToWeaken);
        Assert.Equal([Version], again.AlreadyWeak);
    }

    [Fact]
    public void PlanRefusesWhenARelocatedSymbolNeedsTheMissingVersion()
    {
        var bytes = File.ReadAllBytes(Original);
        var elf = new ElfFile(bytes, Original);
        var need = elf.VersionNeeds().Single(n => n.Version == Version);
        // Bind a symbol that relocations use to the missing version: a library that really needs it.
        string used = elf.RelocatedSymbols().First(s => s.StartsWith("_ZNSt", StringComparison.Ordinal));
        long at = elf.SymbolVersionOffset(used);
        bytes[at] = (byte)need.Index;
        bytes[at + 1] = (byte)(need.Index >> 8);
        var system = new HashSet<string>(SystemVersions().Where(v => v != Version));
        var e = Assert.Throws<ElfFormatException>(() => LibTorchLoadFix.Plan(new ElfFile(bytes, "mutated.so"), "mutated.so", NeedFile, system));
        Assert.Contains(used, e.Message);
        Assert.Contains(Version, e.Message);
        Assert.Contains("mutated.so", e.Message);
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' })]
    [InlineData(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64 })]
    public void NonElfInputIsAClearError(byte[] bytes)
    {
        var e = Assert.Throws<ElfFormatException>(() => new ElfFile(bytes, "junk.so"));
        Assert.StartsWith("junk.so: ", e.Message);
    }

    [Fact]
    public void TruncatedElfIsAClearError()
    {
        var bytes = File.ReadAllBytes(Original)[..4096];
        var e = Assert.Throws<ElfFormatException>(() => new ElfFile(bytes, "cut.so").VersionNeeds());
        Assert.StartsWith("cut.so: ", e.Message);
    }
}
