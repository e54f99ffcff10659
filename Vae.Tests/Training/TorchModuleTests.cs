using TorchSharp;
using static TorchSharp.torch;

namespace Vae.Tests.Training;

/// <summary>The encoder and decoder as TorchSharp modules over the model's own parameters.</summary>
public class TorchModuleTests
{
    static VariationalAutoEncoder Model(DecoderLikelihood likelihood = DecoderLikelihood.Bernoulli, long seed = 1) =>
        VariationalAutoEncoder.Create(new VaeModelOptions { InputDimension = 12, HiddenUnits = 7, LatentDimensions = 3, Likelihood = likelihood, InitialStandardDeviation = 0.3 }, seed);

    static float MaxDifference(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Theory]
    [InlineData(DecoderLikelihood.Bernoulli)]
    [InlineData(DecoderLikelihood.GaussianSigmoidMean)]
    [InlineData(DecoderLikelihood.LinearGaussian)]
    public void TheModulesComputeEncodeAndDecode(DecoderLikelihood likelihood)
    {
        using var model = Model(likelihood);
        using var encoder = model.AsEncoderModule();
        using var decoder = model.AsDecoderModule();
        var x = rand(5, 12, generator: Vae.Core.Torch.generator(2));
        var z = randn(5, 3, generator: Vae.Core.Torch.generator(3));
        var (mean, logVariance) = encoder.call(x);
        var expected = model.Encode(x);
        Assert.Equal(0f, MaxDifference(mean, expected.Mean));
        Assert.Equal(0f, MaxDifference(logVariance, expected.LogVariance));
        Assert.Equal(0f, MaxDifference(decoder.call(z), model.Decode(z)));
    }

    [Fact]
    public void AGradientStepThroughTheModuleChangesTheModelsParameters()
    {
        using var model = Model();
        using var decoder = model.AsDecoderModule();
        var z = randn(8, 3, generator: Vae.Core.Torch.generator(4));
        var before = model.Decode(z).detach().clone();
        using var optimiser = optim.SGD(decoder.parameters(), 0.5);
        // A loss of the user's own: pull every output towards 1.
        var loss = (1 - decoder.call(z)).pow(2).sum();
        loss.backward();
        optimiser.step();
        var after = model.Decode(z);
        Assert.True(MaxDifference(after, before) > 1e-3, "the model's decoder moved");
        Assert.Equal(0f, MaxDifference(after, decoder.call(z).detach()));
        Assert.True(after.mean().item<float>() > before.mean().item<float>(), "towards the user's target");
    }

    [Fact]
    public void TheStateDictHasPyTorchsNamesAndSavedWeightsLoadIntoAnotherModel()
    {
        using var model = Model(seed: 1);
        using var other = Model(seed: 2);
        using var encoder = model.AsEncoderModule();
        Assert.Equal(["hidden.weight", "hidden.bias", "mean.weight", "mean.bias", "logvar.weight", "logvar.bias"],
            encoder.state_dict().Keys.OrderBy(k => k.Split('.')[0] switch { "hidden" => 0, "mean" => 1, _ => 2 }).ThenBy(k => k.EndsWith("bias")));
        string path = Path.Combine(TestEnvironment.NewTempDirectory(), "encoder.dat");
        encoder.save(path);
        using var target = other.AsEncoderModule();
        target.load(path);
        var x = rand(4, 12, generator: Vae.Core.Torch.generator(5));
        // Loading writes the weights into the other model itself.
        Assert.Equal(0f, MaxDifference(other.Encode(x).Mean, model.Encode(x).Mean));
    }

    [Fact]
    public void TheDecoderComposesInASequential()
    {
        using var model = Model();
        using var decoder = model.AsDecoderModule();
        var sequence = nn.Sequential(("embed", nn.Linear(5, 3)), ("decoder", decoder));
        var input = randn(6, 5, generator: Vae.Core.Torch.generator(6));
        var output = sequence.call(input);
        Assert.Equal([6L, 12L], output.shape);
        Assert.Equal(0f, MaxDifference(output, model.Decode(((nn.Module<Tensor, Tensor>)sequence[0]).call(input))));
        Assert.Contains("decoder.hidden.weight", sequence.state_dict().Keys);
    }
}
