using Vae.Data;
using Xunit;

namespace Vae.Tests.Data;

/// <summary>A data set named by <see cref="DataSource"/>: parsed from its name, recorded in a checkpoint and found again,
/// with the paper's model for it and the name of its run directory.</summary>
public class DataSourceTests
{
    [Fact]
    public void EveryNameParsesToItsKindAndBack()
    {
        foreach (var name in DataSource.Names)
        {
            var source = DataSource.Parse(name, name is "idx" or "npy" ? "/some/where" : null);
            Assert.Equal(name, source.Name);
        }
        Assert.Equal(DataSetKind.BinarizedMnist, DataSource.Parse("binarized-mnist").Kind);
        Assert.True(DataSource.Parse("binarized-mnist").TrainsBinarized);
        Assert.False(DataSource.Parse("mnist").TrainsBinarized);
    }

    [Fact]
    public void AnUnknownNameOrAMissingPathIsRefusedWithWhatWasExpected()
    {
        var e = Assert.Throws<ArgumentException>(() => DataSource.Parse("cifar"));
        Assert.StartsWith("data set 'cifar': expected one of mnist, frey-face, binarized-mnist, idx, npy", e.Message);
        Assert.Contains(".npy file", Assert.Throws<ArgumentException>(() => DataSource.Parse("npy")).Message);
        Assert.Contains("directory of IDX files", Assert.Throws<ArgumentException>(() => DataSource.Parse("idx")).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => DataSource.Parse("mnist", trainLimit: 0));
    }

    /// <summary>A checkpoint keeps the data's fields under <c>run.</c>; they give back the same source (a path made
    /// absolute), and a checkpoint without them (the experiments', the façade's) its description's data set.</summary>
    [Fact]
    public void ACheckpointsFieldsGiveBackItsDataSource()
    {
        var npy = DataSource.Parse("npy", "data/x.npy", 500);
        var settings = npy.CheckpointFields.ToDictionary(kv => "run." + kv.Key, kv => kv.Value);
        Assert.Equal(npy with { Path = Path.GetFullPath("data/x.npy") }, DataSource.FromCheckpointSettings(settings));
        Assert.Equal(DataSetKind.FreyFace, DataSource.FromCheckpointSettings(new Dictionary<string, string> { ["dataset"] = "Frey Face: 1700 training images" }).Kind);
        Assert.Equal(DataSource.Parse("mnist"), DataSource.FromCheckpointSettings(new Dictionary<string, string>()));
        var e = Assert.Throws<InvalidDataException>(() => DataSource.FromCheckpointSettings(new Dictionary<string, string> { ["run.dataset"] = "mnist", ["run.ntrain"] = "many" }));
        Assert.Equal("checkpoint field 'run.ntrain' = 'many', expected a positive integer", e.Message);
    }

    /// <summary>Section 5's architectures: MNIST 784-500-20 with a Bernoulli decoder, Frey Face 560-200-10 with the
    /// Gaussian decoder; a user's files keep the input size they load with.</summary>
    [Fact]
    public void ThePaperModelIsSectionFivesArchitectureForTheDataSet()
    {
        var mnist = DataSource.Parse("mnist").PaperModel();
        Assert.Equal((784, 500, 20, DecoderLikelihood.Bernoulli), (mnist.InputDimension, mnist.HiddenUnits, mnist.LatentDimensions, mnist.Likelihood));
        var frey = DataSource.Parse("frey-face").PaperModel();
        Assert.Equal((560, 200, 10, DecoderLikelihood.GaussianSigmoidMean), (frey.InputDimension, frey.HiddenUnits, frey.LatentDimensions, frey.Likelihood));
        Assert.Equal(12, DataSource.Parse("npy", "x.npy").PaperModel(12).InputDimension);
        Assert.False(DataSource.Parse("npy", "x.npy").HasPaperLikelihood);
        Assert.True(DataSource.Parse("frey-face").HasPaperLikelihood);
    }

    [Fact]
    public void ATrainingLimitBeyondTheDataSetIsRefusedByName()
    {
        var cut = DataSource.Parse("mnist", trainLimit: 1000).Load(new DataSetOptions { AllowDownload = false });
        Assert.Equal(1000, cut.Train.Count);
        var e = Assert.Throws<ArgumentException>(() => DataSource.Parse("mnist", trainLimit: 50_001).Load(new DataSetOptions { AllowDownload = false }));
        Assert.Equal(nameof(DataSource.TrainLimit), e.ParamName);
        Assert.StartsWith("50001 exceeds the 50000 training images of mnist", e.Message);
    }

    /// <summary>The default run directory names the settings that make a run differ from the paper's.</summary>
    [Fact]
    public void TheRunNameSaysWhatMakesARunDiffer()
    {
        Assert.Equal("mnist-j20-aevb-b-seed0", Trainer.RunName("mnist", TrainingAlgorithm.Aevb, 20, 1, new AevbOptions()));
        Assert.Equal("mnist-j3-aevb-a-l5-seed2", Trainer.RunName("mnist", TrainingAlgorithm.Aevb, 3, 1, new AevbOptions { Estimator = SgvbEstimator.A, SamplesPerDatapoint = 5, Seed = 2 }));
        Assert.Equal("binarized-mnist-j50-aevb-iwae-k5-dreg-layers2-adam-seed1", Trainer.RunName("binarized-mnist", TrainingAlgorithm.Aevb, 50, 2,
            new AevbOptions { Objective = TrainingObjective.ImportanceWeighted, SamplesPerDatapoint = 5, EncoderGradient = EncoderGradient.DoublyReparameterised, Optimizer = TrainingOptimizer.Adam, Seed = 1 }));
        Assert.Equal("frey-face-j10-wake-sleep-seed0", Trainer.RunName("frey-face", TrainingAlgorithm.WakeSleep, 10, 1, new AevbOptions()));
        Assert.Equal(0.001, AevbOptions.DefaultStepSize(TrainingOptimizer.Adam));
        Assert.Equal(new AevbOptions().StepSize, AevbOptions.DefaultStepSize(TrainingOptimizer.Adagrad));
    }
}
