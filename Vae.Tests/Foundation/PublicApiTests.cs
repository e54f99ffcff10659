using PublicApiGenerator;

namespace Vae.Tests.Foundation;

/// <summary>The packages' public API is a promise: the surface of each assembly (the façade Vae, Vae.Experiments, and the
/// F# core Vae.Core and Vae.Data that F# scripts call), as text, must equal its committed baseline (<c>Vae.Tests/Foundation/ASSEMBLY.PublicApi.txt</c>). A deliberate change updates the baseline in the same commit, with
/// its entry in CHANGELOG.md (and an [Obsolete] forwarder for one version where a name changes); run the tests with
/// <c>VAE_ACCEPT_API=1</c> to write the new surface over the baseline.</summary>
public class PublicApiTests
{
    static string BaselinePath(string assembly) => Path.Combine(TestEnvironment.RepositoryRoot, "Vae.Tests", "Foundation", assembly + ".PublicApi.txt");

    static System.Reflection.Assembly Assembly(string name) => name switch
    {
        "Vae" => typeof(VariationalAutoEncoder).Assembly,
        "Vae.Experiments" => typeof(Vae.Experiments.Figure2).Assembly,
        "Vae.Core" => typeof(Vae.Core.VaeModel).Assembly,
        "Vae.Data" => typeof(Vae.Core.CheckpointContents).Assembly,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "no such package assembly"),
    };

    static string Surface(string assembly = "Vae") =>
        Assembly(assembly).GeneratePublicApi(new ApiGeneratorOptions { IncludeAssemblyAttributes = false }).ReplaceLineEndings("\n");

    /// <summary>Lines of the baseline missing from the surface, and lines of the surface missing from the baseline.</summary>
    static (string[] Removed, string[] Added) Compare(string baseline, string surface)
    {
        var was = baseline.ReplaceLineEndings("\n").Split('\n');
        var now = surface.Split('\n');
        return (was.Except(now).Where(l => l.Trim().Length > 0).ToArray(), now.Except(was).Where(l => l.Trim().Length > 0).ToArray());
    }

    [Theory]
    [InlineData("Vae")]
    [InlineData("Vae.Experiments")]
    [InlineData("Vae.Core")]
    [InlineData("Vae.Data")]
    public void APackagesPublicApiEqualsItsRecordedBaseline(string assembly)
    {
        string surface = Surface(assembly), baseline = BaselinePath(assembly);
        if (Environment.GetEnvironmentVariable("VAE_ACCEPT_API") == "1") File.WriteAllText(baseline, surface);
        Assert.True(File.Exists(baseline), $"no API baseline at {baseline}: run the tests once with VAE_ACCEPT_API=1 and commit it");
        var (removed, added) = Compare(File.ReadAllText(baseline), surface);
        Assert.True(removed.Length == 0 && added.Length == 0,
            $"the public API of the {assembly} package changed without its baseline ({Path.GetFileName(baseline)}) and CHANGELOG.md:\n"
            + string.Concat(removed.Take(15).Select(l => "  - " + l.Trim() + "\n")) + string.Concat(added.Take(15).Select(l => "  + " + l.Trim() + "\n")));
    }

    /// <summary>The comparison sees what a program would: a member gone from the surface (here Load) is reported
    /// removed, and a renamed one removed and added.</summary>
    [Fact]
    public void ARemovedOrRenamedMemberIsReported()
    {
        string surface = Surface();
        const string load = "public static Vae.VariationalAutoEncoder Load(string path) { }";
        Assert.Contains(load, surface);
        var (removed, added) = Compare(surface, surface.Replace(load, ""));
        Assert.Equal([load], removed.Select(l => l.Trim()));
        Assert.Empty(added);
        (removed, added) = Compare(surface, surface.Replace(load, load.Replace("Load(", "Open(")));
        Assert.Equal([load], removed.Select(l => l.Trim()));
        Assert.Equal(["public static Vae.VariationalAutoEncoder Open(string path) { }"], added.Select(l => l.Trim()));
    }
}
