using Vae.Cli;

namespace Vae.Tests.Training;

/// <summary>Adam under Burda et al.'s schedule as a setting of the façade and of <c>vae train</c>: recorded, resumed and
/// replayed like Adagrad's runs; refused where it does not apply.</summary>
public class AdamTrainingTests
{
    static readonly AevbOptions Burda = new() { Seed = 3, Optimizer = TrainingOptimizer.Adam, StepSize = 0.001, Schedule = StepSizeSchedule.Burda, BatchSize = 20 };

    [Fact]
    public void AnAdamRunRecordsItsOptimizerAndResumesWithIt()
    {
        string dir = TestEnvironment.NewTempDirectory();
        using (var trainer = new AevbTrainer(SmallMnist.Model, Burda))
        {
            Assert.Equal("autograd", trainer.GradientPath);
            var summary = trainer.Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 6_000, EvaluateEvery = 2_000, TestData = SmallMnist.Test, RunDirectory = dir });
            Assert.True(summary.Evaluations[^1].TestBound > summary.Evaluations[0].TestBound, "the bound rises");
        }
        var lines = File.ReadAllLines(Path.Combine(dir, "options.txt"));
        Assert.Contains("optimizer = Adam", lines);
        Assert.Contains("step_size_schedule = Burda", lines);
        Assert.Contains("adam_epsilon = 0.0001", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("warm_up", StringComparison.Ordinal));
        using var resumed = Trainer.Resume(dir);
        Assert.Equal(TrainingOptimizer.Adam, resumed.Options.Optimizer);
        Assert.Equal(StepSizeSchedule.Burda, resumed.Options.Schedule);
        Assert.Equal((0.001, 0.9, 0.999, 1e-4), (resumed.Options.StepSize, resumed.Options.AdamBeta1, resumed.Options.AdamBeta2, resumed.Options.AdamEpsilon));
    }

    [Fact]
    public void VaeTrainTakesAdamAndVerifyReplaysItsRun()
    {
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "adam");
        var (code, output, err) = Cli.Vae.Run("train", "--ntrain", "1000", "--latent", "3", "--hidden", "20", "--hidden-layers", "2", "--batch", "20",
                                              "--optimizer", "adam", "--schedule", "burda", "--adam-beta1", "0.99", "--samples", "4000", "--eval-every", "2000", "--threads", "1", "--out", dir);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.Contains("Adam 0.001 (Burda's schedule)", output);
        Assert.Contains("adam_beta1 = 0.99", File.ReadAllLines(Path.Combine(dir, "options.txt")));
        Assert.Contains("adam_variant = KingmaBa", File.ReadAllLines(Path.Combine(dir, "options.txt")));
        var verified = Cli.Vae.Run("verify", dir);
        Assert.True(verified.Code == VaeCommand.Ok, verified.Err + verified.Out);
        Assert.Contains("identical: 2 evaluations", verified.Out);
    }

    [Theory]
    [InlineData("--adam-variant", "burda-code")]
    [InlineData("--optimizer", "adam", "--adam-variant", "theano")]
    [InlineData("--schedule", "burda")]
    [InlineData("--optimizer", "adam", "--warm-up", "10")]
    [InlineData("--optimizer", "adam", "--step-size", "auto")]
    [InlineData("--optimizer", "adam", "--precision", "bfloat16")]
    [InlineData("--adam-beta1", "0.99")]
    [InlineData("--optimizer", "adam", "--adam-beta1", "1")]
    [InlineData("--optimizer", "adam", "--adam-epsilon", "0")]
    public void VaeTrainRefusesWhatAdamDoesNotTake(params string[] args)
    {
        var (code, _, err) = Cli.Vae.Run(["train", "--samples", "100", "--out", Path.Combine(TestEnvironment.NewTempDirectory(), "x"), .. args]);
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains(args[^2], err);
    }

    [Fact]
    public void TheFacadeRefusesAScheduleForAdagradAndAdamsOutOfRangeSettings()
    {
        Assert.Throws<ArgumentException>(() => new AevbTrainer(SmallMnist.Model, new AevbOptions { Schedule = StepSizeSchedule.Burda }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AevbTrainer(SmallMnist.Model, new AevbOptions { Optimizer = TrainingOptimizer.Adam, AdamBeta1 = 1.0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AevbTrainer(SmallMnist.Model, new AevbOptions { Optimizer = TrainingOptimizer.Adam, AdamEpsilon = 0 }));
        Assert.Throws<ArgumentException>(() => new AevbTrainer(SmallMnist.Model, new AevbOptions { AdamVariant = AdamVariant.BurdaCode }));
        var e = Assert.Throws<ArgumentException>(() => new AevbTrainer(SmallMnist.Model, new AevbOptions { Optimizer = TrainingOptimizer.Adam, Gradient = GradientComputation.HandDerived }));
        Assert.Contains("Adagrad", e.Message);
    }
}
