using PublicApiGenerator;

namespace Vae.Tests.Foundation;

/// <summary>The façade's public API is a promise: its surface, as text, must equal the committed baseline
/// (<c>Vae.Tests/Foundation/Vae.PublicApi.txt</c>). A deliberate change updates the baseline in the same commit, with
/// its entry in CHANGELOG.md (and an [Obsolete] forwarder for one version where a name changes); run the tests with
/// <c>VAE_ACCEPT_API=1</c> to write the new surface over the baseline.</summary>
public class PublicApiTests
{
    static string BaselinePath => Path.Combine(TestEnvironment.RepositoryRoot, "Vae.Tests", "Foundation", "Vae.PublicApi.txt");

    static string Surface() =>
        typeof(VariationalAutoEncoder).Assembly.GeneratePublicApi(new ApiGeneratorOptions { IncludeAssemblyAttributes = false })
            .ReplaceLineEndings("\n");

    /// <summary>Lines of the baseline missing from the surface, and lines of the surface missing from the baseline.</summary>
    static (string[] Removed, string[] Added) Compare(string baseline, string surface)
    {
        var was = baseline.ReplaceLineEndings("\n").Split('\n');
        var now = surface.Split('\n');
        return (was.Except(now).Where(l => l.Trim().Length > 0).ToArray(), now.Except(was).Where(l => l.Trim().Length > 0).ToArray());
    }

    [Fact]
    public void TheFacadesPublicApiEqualsItsRecordedBaseline()
    {
        string surface = Surface();
        if (Environment.GetEnvironmentVariable("VAE_ACCEPT_API") == "1") File.WriteAllText(BaselinePath, surface);
        Assert.True(File.Exists(BaselinePath), $"no API baseline at {BaselinePath}: run the tests once with VAE_ACCEPT_API=1 and commit it");
        var (removed, added) = Compare(File.ReadAllText(BaselinePath), surface);
        Assert.True(removed.Length == 0 && added.Length == 0,
            "the public API of the Vae package changed without its baseline (Vae.Tests/Foundation/Vae.PublicApi.txt) and CHANGELOG.md:\n"
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
