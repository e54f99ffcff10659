using Vae.Core;

namespace Vae.Tests.Training;

public class VariationalAutoEncoderTests
{
    [Fact]
    public void EncodeDecodeSampleAndReconstructHaveTheModelsShapes()
    {
        var model = VariationalAutoEncoder.Create(SmallMnist.Model, seed: 1);
        var x = new float[4, 784];
        var code = model.Encode(x);
        Assert.Equal((4, 3), (code.Mean.GetLength(0), code.Mean.GetLength(1)));
        Assert.Equal((4, 3), (code.LogVariance.GetLength(0), code.LogVariance.GetLength(1)));
        var decoded = model.Decode(code.Mean);
        Assert.Equal((4, 784), (decoded.GetLength(0), decoded.GetLength(1)));
        Assert.All(decoded.Cast<float>(), v => Assert.InRange(v, 0f, 1f));
        Assert.Equal(7, model.Sample(7, seed: 2).GetLength(0));
        Assert.Equal(model.Sample(3, seed: 2).Cast<float>(), model.Sample(3, seed: 2).Cast<float>());
        Assert.Equal(784, model.Reconstruct(x).GetLength(1));
        Assert.Throws<ArgumentException>(() => model.Encode(new float[2, 10]));
        Assert.Throws<ArgumentException>(() => model.Decode(new float[2, 5]));
    }

    [Fact]
    public void SaveThenLoadGivesTheSameModel()
    {
        var model = VariationalAutoEncoder.Create(VaeModelOptions.FreyFace(latentDimensions: 4), seed: 5);
        string path = Path.Combine(TestEnvironment.NewTempDirectory(), "m.vae");
        model.Save(path);
        var loaded = VariationalAutoEncoder.Load(path);
        Assert.Equal(DecoderLikelihood.GaussianSigmoidMean, loaded.Options.Likelihood);
        Assert.Equal((560, 200, 4), (loaded.Options.InputDimension, loaded.Options.HiddenUnits, loaded.Options.LatentDimensions));
        foreach (var (p, q) in VaeModelModule.tensors(model.Core).Zip(VaeModelModule.tensors(loaded.Core)))
            Assert.True(p.allclose(q, 0, 0));
    }

    [Theory]
    [InlineData(DecoderLikelihood.Bernoulli)]
    [InlineData(DecoderLikelihood.GaussianSigmoidMean)]
    public void ParameterShapesDescribeTheCreatedModel(DecoderLikelihood likelihood)
    {
        var options = new VaeModelOptions { InputDimension = 7, HiddenUnits = 5, LatentDimensions = 3, Likelihood = likelihood };
        var model = VariationalAutoEncoder.Create(options);
        var created = VaeModelModule.parameters(model.Core).Select(p => (p.Name, string.Join("x", p.Tensor.shape)));
        var described = VaeModelModule.parameterShapes(options.ToCore()).Select(p => (p.Item1, string.Join("x", p.Item2)));
        Assert.Equal(described, created);
    }

    [Fact]
    public void ImportanceWeightedLogLikelihoodIsAboveTheLowerBound()
    {
        var trainer = new AevbTrainer(SmallMnist.Model, SmallMnist.Aevb());
        trainer.Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 30_000, EvaluateEvery = 0 });
        double bound = trainer.Model.LowerBound(SmallMnist.Test);
        double iwae = trainer.Model.LogLikelihood(SmallMnist.Test, k: 100);
        Assert.True(iwae > bound, $"IWAE {iwae:F2} should exceed the ELBO {bound:F2}");
        Assert.True(iwae < bound + 30, $"IWAE {iwae:F2} implausibly far above the ELBO {bound:F2}");
    }
}

public class CheckpointFileTests
{
    static string Saved(out byte[] bytes)
    {
        var trainer = new AevbTrainer(SmallMnist.Model, SmallMnist.Aevb());
        string path = Path.Combine(TestEnvironment.NewTempDirectory(), "c.vae");
        trainer.SaveCheckpoint(path);
        bytes = File.ReadAllBytes(path);
        return path;
    }

    [Fact]
    public void ACorruptedByteIsDetected()
    {
        string path = Saved(out var bytes);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CheckpointException>(() => AevbTrainer.Resume(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("CRC-32", e.Message);
    }

    [Fact]
    public void ATruncatedFileIsDetected()
    {
        string path = Saved(out var bytes);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 1000)]);
        var e = Assert.Throws<CheckpointException>(() => VariationalAutoEncoder.Load(path));
        Assert.StartsWith(path + ": ", e.Message);
    }

    [Fact]
    public void AModelFileIsNotATrainingRun()
    {
        string path = Path.Combine(TestEnvironment.NewTempDirectory(), "m.vae");
        VariationalAutoEncoder.Create(SmallMnist.Model).Save(path);
        var e = Assert.Throws<CheckpointException>(() => AevbTrainer.Resume(path));
        Assert.Contains("field 'kind' = 'model', expected 'training-run'", e.Message);
    }

    [Fact]
    public void ATensorOfTheWrongShapeIsNamed()
    {
        var model = VariationalAutoEncoder.Create(SmallMnist.Model);
        var contents = ModelCheckpoint.write(model.Core);
        // Claim 41 hidden units in the fields while the tensors hold 40.
        var edited = new CheckpointContents(contents.Fields.Add("model.hidden", "41"), contents.Tensors);
        string path = Path.Combine(TestEnvironment.NewTempDirectory(), "m.vae");
        Vae.Core.Checkpoint.save(path, edited);
        var e = Assert.Throws<CheckpointException>(() => VariationalAutoEncoder.Load(path));
        Assert.Contains("tensor 'encoder.hidden.weight' has shape [40, 784], expected [41, 784]", e.Message);
    }

    [Fact]
    public void MixedPrecisionOfAnUnsupportedRunInACheckpointIsNamed()
    {
        var trainer = new AevbTrainer(SmallMnist.Model, new AevbOptions { Estimator = SgvbEstimator.A });
        string path = Path.Combine(TestEnvironment.NewTempDirectory(), "c.vae");
        trainer.SaveCheckpoint(path);
        var contents = Vae.Core.Checkpoint.load(path);
        Vae.Core.Checkpoint.save(path, new CheckpointContents(contents.Fields.Add("aevb.mixed_precision", "True"), contents.Tensors));
        var e = Assert.Throws<CheckpointException>(() => AevbTrainer.Resume(path));
        Assert.Contains("field 'aevb.mixed_precision': mixed precision needs estimator B", e.Message);
    }

    [Fact]
    public void SizesBeyondTheFileAreRefusedBeforeAllocating()
    {
        var model = VariationalAutoEncoder.Create(SmallMnist.Model);
        var contents = ModelCheckpoint.write(model.Core);
        var edited = new CheckpointContents(contents.Fields.Add("model.hidden", "2000000000"), contents.Tensors);
        string path = Path.Combine(TestEnvironment.NewTempDirectory(), "m.vae");
        Vae.Core.Checkpoint.save(path, edited);
        var e = Assert.Throws<CheckpointException>(() => VariationalAutoEncoder.Load(path));
        Assert.Contains("tensor 'encoder.hidden.weight' has shape [40, 784], expected [2000000000, 784]", e.Message);
        // A tensor header claiming 2^40 values is refused by the reader itself.
        var bytes = Vae.Core.Checkpoint.toBytes(new CheckpointContents(
            Microsoft.FSharp.Collections.MapModule.Empty<string, string>(),
            Microsoft.FSharp.Collections.ListModule.OfSeq(new[] { Tuple.Create("x", TorchSharp.torch.zeros(2)) })));
        int dims = bytes.Length - 4 - 8 - 8; // the last tensor's size field sits before its 8 value bytes
        BitConverter.GetBytes(1L << 40).CopyTo(bytes, dims);
        var body = bytes[..^4];
        BitConverter.GetBytes(Vae.Core.Checkpoint.crc32(body)).CopyTo(bytes, bytes.Length - 4);
        var e2 = Assert.Throws<CheckpointException>(() => Vae.Core.Checkpoint.ofBytes("huge.vae", bytes));
        Assert.Contains("tensor 'x'", e2.Message);
    }

    [Fact]
    public void NotACheckpointIsNamed()
    {
        var e = Assert.Throws<CheckpointException>(() => Vae.Core.Checkpoint.ofBytes("x.vae", new byte[100]));
        Assert.Contains("not a Vae checkpoint", e.Message);
    }
}
