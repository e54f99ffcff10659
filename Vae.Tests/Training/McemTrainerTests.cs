using Vae.Core;

namespace Vae.Tests.Training;

public class McemTrainerTests
{
    static readonly Vae.Data.ImageData Train200 = new(200, 28, 28, SmallMnist.Train.Pixels[..(200 * 784)]);

    [Fact]
    public void MonteCarloEmRaisesTheEstimatedLogLikelihood()
    {
        var trainer = new McemTrainer(SmallMnist.Model, SmallMnist.Aevb());
        var before = trainer.Fit(Train200, new TrainingOptions { TotalSamples = 0, EvaluateEvery = 0, MarginalLikelihoodPoints = 50 });
        Assert.Empty(before.Evaluations); // nothing to do at a budget of 0
        var first = new McemTrainer(SmallMnist.Model, SmallMnist.Aevb())
            .Fit(Train200, new TrainingOptions { TotalSamples = 1000, EvaluateEvery = 0, MarginalLikelihoodPoints = 50 }).Evaluations[^1];
        var later = trainer.Fit(Train200, new TrainingOptions { TotalSamples = 40_000, EvaluateEvery = 0, MarginalLikelihoodPoints = 50 }).Evaluations[^1];
        Assert.Equal("mcem", trainer.Algorithm);
        Assert.True(later.TrainBound > first.TrainBound + 50, $"log p(x) {first.TrainBound:F1} -> {later.TrainBound:F1}");
    }

    [Fact]
    public void AMonteCarloEmRunResumesWithItsChains()
    {
        string whole = TestEnvironment.NewTempDirectory(), parts = TestEnvironment.NewTempDirectory();
        var options = (long samples, string dir) => new TrainingOptions { TotalSamples = samples, EvaluateEvery = 0, MarginalLikelihoodPoints = 10, RunDirectory = dir };
        new McemTrainer(SmallMnist.Model, SmallMnist.Aevb()).Fit(Train200, options(3000, whole));
        new McemTrainer(SmallMnist.Model, SmallMnist.Aevb()).Fit(Train200, options(1500, parts));
        var resumed = Trainer.Resume(parts);
        Assert.IsType<McemTrainer>(resumed);
        resumed.Fit(Train200, options(3000, parts));
        var a = VaeModelModule.tensors(Trainer.Resume(whole).Model.Core);
        var b = VaeModelModule.tensors(resumed.Model.Core);
        foreach (var (p, q) in a.Zip(b)) Assert.True(p.allclose(q, 0, 0));
        // The chains belong to the training set they were made for.
        Assert.Throws<ArgumentException>(() => Trainer.Resume(parts).Fit(SmallMnist.Train, options(4000, TestEnvironment.NewTempDirectory())));
    }
}
