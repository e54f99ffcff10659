using TorchSharp;
using Vae.Cli;
using Vae.Core;

namespace Vae.Tests.Training;

/// <summary>MLPs with more than one tanh layer (Burda et al. 2015 use two): a setting every learner takes, trained by
/// autograd, carried through checkpoints, run directories, the CLI and the TorchSharp modules; the paper's one-layer
/// files keep their bytes.</summary>
public class DeeperNetworkTests
{
    static readonly VaeModelOptions TwoLayers = new() { HiddenUnits = 30, HiddenLayers = 2, LatentDimensions = 3 };

    [Fact]
    public void ADeeperModelNamesItsLayersInOrderAndOneLayerCheckpointsWriteNoNewField()
    {
        var names = VaeModelModule.parameterShapes(new VaeModelOptions { HiddenUnits = 30, HiddenLayers = 3, LatentDimensions = 3 }.ToCore())
            .Select(p => $"{p.Item1}:{string.Join("x", p.Item2)}").ToArray();
        Assert.Equal(
            ["encoder.hidden.weight:30x784", "encoder.hidden.bias:30", "encoder.hidden2.weight:30x30", "encoder.hidden2.bias:30",
             "encoder.hidden3.weight:30x30", "encoder.hidden3.bias:30", "encoder.mean.weight:3x30", "encoder.mean.bias:3",
             "encoder.logvar.weight:3x30", "encoder.logvar.bias:3",
             "decoder.hidden.weight:30x3", "decoder.hidden.bias:30", "decoder.hidden2.weight:30x30", "decoder.hidden2.bias:30",
             "decoder.hidden3.weight:30x30", "decoder.hidden3.bias:30", "decoder.logits.weight:784x30", "decoder.logits.bias:784"],
            names);
        Assert.DoesNotContain(ModelCheckpoint.fields(SmallMnist.Model.ToCore()), f => f.Item1 == "model.hidden_layers");
        Assert.Contains(ModelCheckpoint.fields(TwoLayers.ToCore()), f => f.Item1 == "model.hidden_layers" && f.Item2 == "2");
    }

    [Fact]
    public void ADeeperRunTrainsByAutogradAndResumesWithItsLayers()
    {
        string dir = TestEnvironment.NewTempDirectory();
        // Adagrad without its warm-up and M = 20: 150 updates in 3,000 samples.
        using (var trainer = new AevbTrainer(TwoLayers, new AevbOptions { Seed = 7, StepSize = 0.05, WarmUp = 0, BatchSize = 20 }))
        {
            Assert.Equal("autograd", trainer.GradientPath);
            double untrained = trainer.Model.LowerBound(SmallMnist.Test);
            var summary = trainer.Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 3_000, EvaluateEvery = 1_000, TestData = SmallMnist.Test, RunDirectory = dir });
            // Learning: from the untrained model's bound (about 784 log 1/2) far up.
            Assert.True(summary.Evaluations[^1].TestBound > untrained + 100, $"the bound rises: {untrained:F2} untrained, {summary.Evaluations[^1].TestBound:F2} trained");
        }
        Assert.Contains("hidden_layers = 2", File.ReadAllLines(Path.Combine(dir, "options.txt")));
        using var resumed = Trainer.Resume(dir);
        Assert.Equal(2, resumed.ModelOptions.HiddenLayers);
        var loaded = VariationalAutoEncoder.Load(Trainer.CheckpointPath(dir));
        Assert.Equal(2, loaded.Options.HiddenLayers);
        Assert.Equal(resumed.Model.Decode(new float[2, 3]).Cast<float>(), loaded.Decode(new float[2, 3]).Cast<float>());
    }

    [Fact]
    public void ADeeperFileWithoutItsLayerCountIsRefusedNamingTheLayerItWouldDrop()
    {
        string path = Path.Combine(TestEnvironment.NewTempDirectory(), "deep.safetensors");
        VariationalAutoEncoder.Create(TwoLayers, seed: 1).Save(path);
        var contents = Checkpoint.load(path);
        Checkpoint.save(path, new CheckpointContents(contents.Fields.Remove("model.hidden_layers"), contents.Tensors));
        var e = Assert.Throws<CheckpointException>(() => VariationalAutoEncoder.Load(path));
        Assert.Matches(@"tensor '(en|de)coder\.hidden2\.(weight|bias)' is a tanh layer beyond the 1 ", e.Message);
    }

    [Fact]
    public void TheHandDerivedAndBfloat16StepsAreRefusedNamingTheLayers()
    {
        var e = Assert.Throws<ArgumentException>(() => new AevbTrainer(TwoLayers, new AevbOptions { Seed = 1, Gradient = GradientComputation.HandDerived }));
        Assert.Contains("2 tanh layers", e.Message);
        e = Assert.Throws<ArgumentException>(() => new AevbTrainer(TwoLayers, new AevbOptions { Seed = 1, MixedPrecision = true }));
        Assert.Contains("one tanh layer per MLP", e.Message);
        e = Assert.Throws<ArgumentException>(() => VariationalAutoEncoder.Create(new VaeModelOptions { HiddenLayers = 0 }));
        Assert.Contains("hidden layers", e.Message);
    }

    [Fact]
    public void VaeTrainTakesHiddenLayersAndSaysSo()
    {
        string dir = TestEnvironment.NewTempDirectory();
        var (code, output, err) = Cli.Vae.Run("train", "--ntrain", "1000", "--latent", "3", "--hidden", "20", "--hidden-layers", "2", "--samples", "1000",
                                              "--threads", "1", "--out", dir);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.Contains("2 tanh layers of 20 hidden units", output);
        Assert.Contains("autograd gradient", output);
        var refused = Cli.Vae.Run("train", "--hidden-layers", "0", "--samples", "100", "--out", Path.Combine(dir, "x"));
        Assert.Equal(VaeCommand.BadUsage, refused.Code);
        Assert.Contains("--hidden-layers", refused.Err);
        refused = Cli.Vae.Run("train", "--hidden-layers", "2", "--precision", "bfloat16", "--samples", "100", "--out", Path.Combine(dir, "y"));
        Assert.Equal(VaeCommand.BadUsage, refused.Code);
        Assert.Contains("one hidden layer", refused.Err);
    }

    [Fact]
    public void TheModulesCarryEveryLayerUnderPyTorchsNames()
    {
        using var model = VariationalAutoEncoder.Create(new VaeModelOptions { InputDimension = 12, HiddenUnits = 7, HiddenLayers = 2, LatentDimensions = 3, InitialStandardDeviation = 0.3 }, seed: 1);
        using var encoder = model.AsEncoderModule();
        using var decoder = model.AsDecoderModule();
        Assert.Equal(["hidden.bias", "hidden.weight", "hidden2.bias", "hidden2.weight", "logvar.bias", "logvar.weight", "mean.bias", "mean.weight"],
            encoder.state_dict().Keys.Order(StringComparer.Ordinal));
        var x = torch.rand(5, 12, generator: Torch.generator(2));
        var z = torch.randn(5, 3, generator: Torch.generator(3));
        Assert.Equal(0f, (encoder.call(x).Mean - model.Encode(x).Mean).abs().max().item<float>());
        Assert.Equal(0f, (decoder.call(z) - model.Decode(z)).abs().max().item<float>());
    }
}
