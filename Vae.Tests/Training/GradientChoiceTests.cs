using Vae.Cli;

namespace Vae.Tests.Training;

/// <summary>The gradient a run uses is a setting, reported and kept by its checkpoint, never a silent switch.</summary>
public class GradientChoiceTests
{
    static readonly VaeModelOptions Float64 = new() { HiddenUnits = 40, LatentDimensions = 3, DoublePrecision = true };

    [Theory]
    [InlineData("aevb")]
    [InlineData("wake-sleep")]
    public void AutogradAndTheHandDerivedGradientTrainTheSameModelToRounding(string algorithm)
    {
        Trainer New(GradientComputation gradient)
        {
            var options = new AevbOptions { Seed = 7, StepSize = 0.05, Gradient = gradient };
            return algorithm == "aevb" ? new AevbTrainer(Float64, options) : new WakeSleepTrainer(Float64, options);
        }
        var byHand = New(GradientComputation.HandDerived);
        var byAutograd = New(GradientComputation.Autograd);
        Assert.Equal("hand-derived", byHand.GradientPath);
        Assert.Equal("autograd", byAutograd.GradientPath);
        Assert.Equal("hand-derived", New(GradientComputation.Auto).GradientPath);
        var options = new TrainingOptions { TotalSamples = 15_000, EvaluateEvery = 0 };
        byHand.Fit(SmallMnist.Train, options);
        byAutograd.Fit(SmallMnist.Train, options);
        // The same draws and the same gradient up to float64 rounding: 150 steps apart by far less than a step moves.
        foreach (var (a, b) in Vae.Core.VaeModelModule.tensors(byHand.Model.Core).Zip(Vae.Core.VaeModelModule.tensors(byAutograd.Model.Core)))
            Assert.True(a.allclose(b, rtol: 0, atol: 1e-9), "parameters differ by more than 1e-9");
    }

    [Fact]
    public void TheHandDerivedGradientIsRefusedWhereItDoesNotApplyAndTheChoiceSurvivesResume()
    {
        var e = Assert.Throws<ArgumentException>(() => new AevbTrainer(SmallMnist.Model, new AevbOptions { Seed = 7, StepSize = 0.05, SamplesPerDatapoint = 2, Gradient = GradientComputation.HandDerived }));
        Assert.Contains("hand-derived gradient covers", e.Message);
        Assert.Throws<ArgumentException>(() => new McemTrainer(SmallMnist.Model, new AevbOptions { Seed = 7, StepSize = 0.05, Gradient = GradientComputation.HandDerived }));
        Assert.Throws<ArgumentException>(() => new AevbTrainer(SmallMnist.Model, new AevbOptions { Seed = 7, StepSize = 0.05, MixedPrecision = true, Gradient = GradientComputation.Autograd }));

        string dir = TestEnvironment.NewTempDirectory();
        new AevbTrainer(SmallMnist.Model, new AevbOptions { Seed = 7, StepSize = 0.05, Gradient = GradientComputation.Autograd })
            .Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 1_000, EvaluateEvery = 0, RunDirectory = dir });
        var resumed = Trainer.Resume(dir);
        Assert.Equal("autograd", resumed.GradientPath);
        Assert.Equal(GradientComputation.Autograd, resumed.Options.Gradient);
        Assert.Contains("gradient = autograd", File.ReadAllText(Path.Combine(dir, "options.txt")));
    }

    [Fact]
    public void TheOnePassStepIsAnExplicitRecordedChoiceThatTrainsAsTheHandDerivedStepDoes()
    {
        // Auto never picks it: recorded runs replay with the step they recorded.
        var byHand = new AevbTrainer(SmallMnist.Model, new AevbOptions { Seed = 7, StepSize = 0.05 });
        var onePass = new AevbTrainer(SmallMnist.Model, new AevbOptions { Seed = 7, StepSize = 0.05, Gradient = GradientComputation.OnePass });
        Assert.Equal("hand-derived", byHand.GradientPath);
        Assert.Equal("hand-derived, one-pass float32", onePass.GradientPath);
        string dir = TestEnvironment.NewTempDirectory();
        var options = new TrainingOptions { TotalSamples = 20_000, EvaluateEvery = 10_000 };
        var a = byHand.Fit(SmallMnist.Train, options).Evaluations[^1];
        var b = onePass.Fit(SmallMnist.Train, options with { RunDirectory = dir }).Evaluations[^1];
        // The same draws; float32 rounding apart (tanh's few units, Adagrad's one pass) after 200 steps.
        Assert.True(Math.Abs(a.TrainBound - b.TrainBound) < 0.05, $"train bounds {a.TrainBound} and {b.TrainBound}");
        Assert.NotEqual(a.TrainBound, b.TrainBound);
        var resumed = Trainer.Resume(dir);
        Assert.Equal(GradientComputation.OnePass, resumed.Options.Gradient);
        Assert.Contains("gradient = hand-derived, one-pass float32", File.ReadAllText(Path.Combine(dir, "options.txt")));

        // Where it does not apply it is refused, naming the choice.
        foreach (var refused in new Func<Trainer>[]
        {
            () => new WakeSleepTrainer(SmallMnist.Model, new AevbOptions { Seed = 7, StepSize = 0.05, Gradient = GradientComputation.OnePass }),
            () => new AevbTrainer(new VaeModelOptions { HiddenUnits = 40, LatentDimensions = 3, Likelihood = DecoderLikelihood.Gaussian }, new AevbOptions { Seed = 7, StepSize = 0.05, Gradient = GradientComputation.OnePass }),
            () => new AevbTrainer(Float64, new AevbOptions { Seed = 7, StepSize = 0.05, Gradient = GradientComputation.OnePass }),
        })
            Assert.Contains("one-pass step", Assert.Throws<ArgumentException>(refused).Message);
    }

    [Fact]
    public void VaeTrainTakesTheChoiceAndReportsTheGradientItUses()
    {
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "run");
        var (code, output, err) = Cli.Vae.Run("train", "--ntrain", "1000", "--latent", "3", "--hidden", "40", "--samples", "1000", "--gradient", "autograd", "--threads", "1", "--out", dir);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.Contains("autograd gradient", output);
        var refused = Cli.Vae.Run("train", "--estimator", "b", "--k", "2", "--gradient", "hand-derived", "--samples", "100", "--threads", "1", "--out", Path.Combine(dir, "x"));
        Assert.Equal(VaeCommand.BadUsage, refused.Code);
        Assert.Contains("hand-derived gradient covers", refused.Err);
    }
}
