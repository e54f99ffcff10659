using Vae.Core;

namespace Vae.Tests.Training;

/// <summary>A run that diverges stops at the first non-finite value with the parameters of its last good step, for
/// every algorithm and gradient path, not only at step 0.</summary>
public class NonFiniteTests
{
    [Theory]
    [InlineData("aevb", DecoderLikelihood.Gaussian, SgvbEstimator.B, "hand-derived")]
    [InlineData("aevb", DecoderLikelihood.Gaussian, SgvbEstimator.A, "autograd")]
    [InlineData("wake-sleep", DecoderLikelihood.Gaussian, SgvbEstimator.B, "hand-derived")]
    [InlineData("wake-sleep", DecoderLikelihood.LinearGaussian, SgvbEstimator.B, "autograd")]
    [InlineData("mcem", DecoderLikelihood.Gaussian, SgvbEstimator.B, "autograd")]
    public void ADivergingRunStopsAtItsFirstNonFiniteStepWithTheParametersOfACleanRunOfTheStepsBefore(string algorithm, DecoderLikelihood likelihood, SgvbEstimator estimator, string path)
    {
        // A step size of 10^4 makes Adagrad's first updates throw the Gaussian decoder's log-variances far out, so the
        // bound overflows after the warm-up, at a step k > 0 that the run does not know in advance.
        var model = new VaeModelOptions { InputDimension = 4, HiddenUnits = 8, LatentDimensions = 2, Likelihood = likelihood };
        var options = new AevbOptions { StepSize = 1e4, BatchSize = 5, Seed = 3, Estimator = estimator };
        var random = new Random(11);
        var data = new Vae.Data.ImageData(40, 1, 4, [.. Enumerable.Range(0, 160).Select(_ => (float)random.NextDouble())]);
        Trainer New() => algorithm switch
        {
            "aevb" => new AevbTrainer(model, options),
            "wake-sleep" => new WakeSleepTrainer(model, options),
            _ => new McemTrainer(model, options),
        };

        string diverged = TestEnvironment.NewTempDirectory();
        var trainer = New();
        Assert.Equal(path, trainer.GradientPath);
        var e = Assert.Throws<NonFiniteBoundException>(() => trainer.Fit(data, new TrainingOptions { TotalSamples = 100_000_000, EvaluateEvery = 0, RunDirectory = diverged }));
        Assert.True(e.Step > 0, $"diverged at step {e.Step}");

        string clean = TestEnvironment.NewTempDirectory();
        long perStep = algorithm == "mcem" ? 5 * data.Count : options.BatchSize;
        var summary = New().Fit(data, new TrainingOptions { TotalSamples = e.Step * perStep, EvaluateEvery = 0, RunDirectory = clean });
        Assert.Equal(e.Step, summary.Steps);
        Assert.Equal(TestRecords.ModelBytes(clean), TestRecords.ModelBytes(diverged));
        // The checkpoint is labelled with the last good step (and carries Monte Carlo EM's chains), so it resumes there.
        using var saved = Trainer.Resume(diverged);
        Assert.Equal(e.Step, saved.Step);
    }
}
