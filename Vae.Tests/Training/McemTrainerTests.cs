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
            .Fit(Train200, new TrainingOptions { TotalSamples = 5 * 1000, EvaluateEvery = 0, MarginalLikelihoodPoints = 50 }).Evaluations[^1];
        var later = trainer.Fit(Train200, new TrainingOptions { TotalSamples = 5 * 40_000, EvaluateEvery = 0, MarginalLikelihoodPoints = 50 }).Evaluations[^1];
        Assert.Equal(TrainingAlgorithm.MonteCarloEm, trainer.Algorithm);
        Assert.Equal("mcem", trainer.Algorithm.Name());
        Assert.True(later.TrainBound > first.TrainBound + 50, $"log p(x) {first.TrainBound:F1} -> {later.TrainBound:F1}");
    }

    [Fact]
    public void AnEmIterationCountsTheDatapointsOfItsFiveWeightUpdates()
    {
        var trainer = new McemTrainer(SmallMnist.Model, SmallMnist.Aevb());
        var summary = trainer.Fit(Train200, new TrainingOptions { TotalSamples = 3000, EvaluateEvery = 0, MarginalLikelihoodPoints = 5 });
        // 3000 samples are three EM iterations on 200 datapoints: each M-step's five full-batch updates evaluate 5 x 200.
        Assert.Equal(3, summary.Steps);
        Assert.Equal(3000, summary.SamplesSeen);
    }

    [Fact]
    public void AMonteCarloEmCheckpointThatCountedNSamplesPerIterationIsRefused()
    {
        string dir = TestEnvironment.NewTempDirectory();
        new McemTrainer(SmallMnist.Model, SmallMnist.Aevb()).Fit(Train200, new TrainingOptions { TotalSamples = 2000, EvaluateEvery = 0, MarginalLikelihoodPoints = 5, RunDirectory = dir });
        string path = Path.Combine(dir, Trainer.CheckpointFileName);
        Assert.IsType<McemTrainer>(Trainer.Resume(path));
        // The same checkpoint as written before the 5N count: without the field that records it.
        var contents = Checkpoint.load(path);
        Checkpoint.save(path, new CheckpointContents(contents.Fields.Remove("mcmc.samples_per_iteration"), contents.Tensors));
        var e = Assert.Throws<CheckpointException>(() => Trainer.Resume(path));
        Assert.Contains("mcmc.samples_per_iteration", e.Message);
    }

    [Fact]
    public void AMonteCarloEmRunResumesWithItsChains()
    {
        string whole = TestEnvironment.NewTempDirectory(), parts = TestEnvironment.NewTempDirectory();
        var options = (long samples, string dir) => new TrainingOptions { TotalSamples = samples, EvaluateEvery = 0, MarginalLikelihoodPoints = 10, RunDirectory = dir };
        new McemTrainer(SmallMnist.Model, SmallMnist.Aevb()).Fit(Train200, options(5 * 3000, whole));
        new McemTrainer(SmallMnist.Model, SmallMnist.Aevb()).Fit(Train200, options(5 * 1500, parts));
        var resumed = Trainer.Resume(parts);
        Assert.IsType<McemTrainer>(resumed);
        resumed.Fit(Train200, options(5 * 3000, parts));
        var a = VaeModelModule.tensors(Trainer.Resume(whole).Model.Core);
        var b = VaeModelModule.tensors(resumed.Model.Core);
        foreach (var (p, q) in a.Zip(b)) Assert.True(p.allclose(q, 0, 0));
        // Resumed as AEVB, the checkpoint is refused with the algorithm it records.
        var e = Assert.Throws<CheckpointException>(() => AevbTrainer.Resume(parts));
        Assert.Contains("field 'algorithm' = 'mcem', expected 'aevb'", e.Message);
        // The chains belong to the training set they were made for.
        Assert.Throws<ArgumentException>(() => Trainer.Resume(parts).Fit(SmallMnist.Train, options(5 * 4000, TestEnvironment.NewTempDirectory())));
    }
}
