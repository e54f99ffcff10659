using Vae.Cli;

namespace Vae.Tests.Cli;

/// <summary>The command line as System.CommandLine builds it: generated help for every verb, --version, response
/// files, and the option names scripts rely on.</summary>
public class HelpAndParsingTests
{
    public static TheoryData<string[], string[]> Verbs => new()
    {
        { ["train"], ["--algorithm <aevb|wake-sleep|mcem>", "[default: aevb]", "--samples", "--resume", "--gradient", "[default: 100]"] },
        { ["evaluate"], ["--checkpoint", "(REQUIRED)", "--k", "[default: 5000]", "--estimator <elbo|iwae|hmc-marginal|exact>"] },
        { ["reproduce", "figure2"], ["--latent", "--budget", "[default: 1000000]", "--executor <local|slurm>", "--slurm-time"] },
        { ["reproduce", "figure3"], ["--ntrain", "[default: 1000]", "[default: 2000000]", "--evaluations"] },
        { ["reproduce", "manifolds"], ["--dataset <mnist|frey-face>", "--jobs"] },
        { ["sweep"], ["--seeds", "(REQUIRED)", "--latent", "--executor"] },
        { ["export"], ["--format <onnx|safetensors>", "--part <encoder|decoder>"] },
        { ["sample"], ["--count", "[default: 100]", "--columns"] },
        { ["reconstruct"], ["--count", "[default: 10]"] },
        { ["manifold"], ["--grid", "[default: 20]"] },
        { ["bench"], ["--steps", "[default: 300]", "--precision"] },
        { ["data", "fetch"], ["<name>", "--offline"] },
        { ["data", "info"], ["--cache", "$VAE_DATA_DIR"] }, // the variable the cache reads (issue: help named $VAE_DATA)
    };

    [Theory]
    [MemberData(nameof(Verbs))]
    public void EveryVerbHasGeneratedHelpWithItsOptionsAndDefaults(string[] verb, string[] expected)
    {
        var (code, output, err) = Vae.Run([.. verb, "--help"]);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.Contains($" {string.Join(" ", verb)} [options]", output.Replace(" <name>", ""));
        foreach (var text in expected) Assert.Contains(text, output);
        // `vae help VERB` is the same text.
        Assert.Equal(output, Vae.Run(["help", .. verb]).Out);
    }

    [Fact]
    public void TheRootHelpListsTheVerbsAndNoArgumentsIsBadUsage()
    {
        var (code, output, _) = Vae.Run("--help");
        Assert.Equal(VaeCommand.Ok, code);
        foreach (var verb in new[] { "train", "evaluate", "reproduce", "sweep", "export", "data", "sample", "bench", "version" })
            Assert.Contains($"  {verb} ", output);

        var (none, usage, _) = Vae.Run();
        Assert.Equal(VaeCommand.BadUsage, none);
        Assert.Equal(output, usage);
    }

    [Fact]
    public async Task VersionOptionPrintsTheAssemblyVersion()
    {
        // A process of its own: --version reports the entry assembly, which in-process is the test host.
        string cli = TestEnvironment.CliDll;
        var (code, output, err) = await TestEnvironment.RunProcessAsync("dotnet", ["exec", cli, "--version"], TestEnvironment.RepositoryRoot, new Dictionary<string, string>());
        Assert.True(code == VaeCommand.Ok, err);
        Assert.StartsWith(typeof(VaeCommand).Assembly.GetName().Version!.ToString(3), output);
    }

    [Fact]
    public void AResponseFileSuppliesOptions()
    {
        string dir = TestEnvironment.NewTempDirectory();
        string file = Path.Combine(dir, "tiny.rsp");
        File.WriteAllLines(file, ["--latent 2", "--hidden 20", "--samples 1000", "--eval-every 1000", "--threads 1"]);
        string run = Path.Combine(dir, "run");
        var (code, output, err) = Vae.Run("train", $"@{file}", "--out", run);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.Contains("J = 2, 20 hidden units", output);
        Assert.Contains("finished at 1,000 samples", output);
        var (missing, _, error) = Vae.Run("train", "@/nonexistent/options.rsp");
        Assert.Equal(VaeCommand.BadUsage, missing);
        Assert.StartsWith("vae: ", error);
        Assert.Contains("/nonexistent/options.rsp", error);
    }

    [Theory]
    [InlineData("--samples", "3e3")]
    [InlineData("--samples", "3_000")]
    [InlineData("--samples=3000")]
    public void BudgetsAreWrittenEveryWayScriptsWriteThem(params string[] budget)
    {
        string run = Path.Combine(TestEnvironment.NewTempDirectory(), "run");
        var (code, output, err) = Vae.Run(["train", "--latent", "2", "--hidden", "20", "--eval-every", "0", "--threads", "1", .. budget, "--out", run]);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.Contains("finished at 3,000 samples", output);
    }

    [Theory]
    [InlineData("train", "--resume", "x", "--latent", "3")]
    [InlineData("train", "--samples", "10", "--epochs", "1")]
    [InlineData("evaluate")]
    [InlineData("sweep", "--latent", "2")]
    [InlineData("sweep", "--seeds", "3-1")]
    [InlineData("export", "--checkpoint", "x", "--format", "pt")]
    [InlineData("sample", "--checkpoint", "x", "--grid", "3")]
    public void BadUsageOfAnyVerbIsOneLineAndExitCode2(params string[] args)
    {
        var (code, _, err) = Vae.Run(args);
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.StartsWith("vae: ", err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }
}
