using Vae.Cli;

namespace Vae.Tests.Training;

/// <summary>The N(0, I) prior on the weights (section 5's MAP objective) as a setting of <c>vae train</c>: on by default,
/// off for maximum likelihood (Burda et al.); recorded, resumed and replayed like every other setting.</summary>
public class WeightPriorTests
{
    static string[] Tiny(string dir, params string[] more) =>
        ["train", "--ntrain", "1000", "--latent", "3", "--hidden", "20", "--batch", "20", "--step-size", "0.1",
         "--samples", "4000", "--eval-every", "2000", "--threads", "1", "--out", dir, .. more];

    [Fact]
    public void WithoutTheWeightPriorARunRecordsItTakesAnotherPathAndVerifyReplaysIt()
    {
        string root = TestEnvironment.NewTempDirectory();
        string on = Path.Combine(root, "on"), off = Path.Combine(root, "off");
        var paper = Cli.Vae.Run(Tiny(on));
        Assert.True(paper.Code == VaeCommand.Ok, paper.Err);
        var ml = Cli.Vae.Run(Tiny(off, "--weight-prior", "off"));
        Assert.True(ml.Code == VaeCommand.Ok, ml.Err);
        Assert.Contains("weight_prior = True", File.ReadAllLines(Path.Combine(on, "options.txt")));
        Assert.Contains("weight_prior = False", File.ReadAllLines(Path.Combine(off, "options.txt")));
        // The same seed and draws; only the prior's gradient differs, so the trajectories part.
        Assert.NotEqual(File.ReadAllText(Path.Combine(on, "metrics.csv")), File.ReadAllText(Path.Combine(off, "metrics.csv")));
        using (var resumed = Trainer.Resume(off)) Assert.False(resumed.Options.WeightPrior);
        var verified = Cli.Vae.Run("verify", off);
        Assert.True(verified.Code == VaeCommand.Ok, verified.Err + verified.Out);
        Assert.Contains("identical: 2 evaluations", verified.Out);
    }

    [Fact]
    public void AnUnknownWeightPriorIsRefusedNamingTheOption()
    {
        var (code, _, err) = Cli.Vae.Run(Tiny(Path.Combine(TestEnvironment.NewTempDirectory(), "x"), "--weight-prior", "maybe"));
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains("--weight-prior", err);
    }
}
