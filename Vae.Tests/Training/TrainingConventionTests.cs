using Vae.Cli;

namespace Vae.Tests.Training;

/// <summary>Conventions that separate the paper's runs from Burda et al.'s as settings of <c>vae train</c>: the N(0, I)
/// prior on the weights (section 5's MAP objective; off for maximum likelihood) and the minibatch order (drawn with
/// replacement, or the data's order as Burda et al.'s code). The paper's stay the defaults; each is recorded, resumed
/// and replayed like every other setting.</summary>
public class TrainingConventionTests
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
    public void InOrderMinibatchesAreRecordedTakeAnotherPathAndVerifyReplaysThem()
    {
        string root = TestEnvironment.NewTempDirectory();
        string drawn = Path.Combine(root, "drawn"), inOrder = Path.Combine(root, "in-order");
        var a = Cli.Vae.Run(Tiny(drawn));
        Assert.True(a.Code == VaeCommand.Ok, a.Err);
        var b = Cli.Vae.Run(Tiny(inOrder, "--minibatch-order", "in-order"));
        Assert.True(b.Code == VaeCommand.Ok, b.Err);
        // The paper's records keep their lines; the in-order run names its order.
        Assert.DoesNotContain(File.ReadAllLines(Path.Combine(drawn, "options.txt")), l => l.StartsWith("minibatch_order", StringComparison.Ordinal));
        Assert.Contains("minibatch_order = InOrder", File.ReadAllLines(Path.Combine(inOrder, "options.txt")));
        Assert.NotEqual(File.ReadAllText(Path.Combine(drawn, "metrics.csv")), File.ReadAllText(Path.Combine(inOrder, "metrics.csv")));
        using (var resumed = Trainer.Resume(inOrder)) Assert.Equal(MinibatchOrder.InOrder, resumed.Options.MinibatchOrder);
        Assert.Equal(MinibatchOrder.InOrder, RunRecord.Read(inOrder).Options.MinibatchOrder);
        var verified = Cli.Vae.Run("verify", inOrder);
        Assert.True(verified.Code == VaeCommand.Ok, verified.Err + verified.Out);
        Assert.Contains("identical: 2 evaluations", verified.Out);
    }

    [Theory]
    [InlineData("--weight-prior", "maybe")]
    [InlineData("--minibatch-order", "shuffled")]
    [InlineData("--algorithm", "mcem", "--minibatch-order", "in-order")]
    public void BadConventionsAreRefusedNamingTheOption(params string[] args)
    {
        var (code, _, err) = Cli.Vae.Run(Tiny(Path.Combine(TestEnvironment.NewTempDirectory(), "x"), args));
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains(args[^2], err);
    }

    [Fact]
    public void MonteCarloEmRefusesAnInOrderMinibatchInTheFacade()
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => new McemTrainer(SmallMnist.Model, new AevbOptions { MinibatchOrder = MinibatchOrder.InOrder }));
        Assert.Contains("Order", e.Message);
    }
}
