using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Vae.Cli;

namespace Vae.Tests.Training;

/// <summary>The ONNX export run by ONNX Runtime (no libtorch on its path) gives the model's own encoder and decoder.</summary>
public class OnnxExportTests
{
    static float[,] Rows(Vae.Data.ImageData data, int n)
    {
        var x = new float[n, data.Dimension];
        for (int i = 0; i < n; i++) for (int d = 0; d < data.Dimension; d++) x[i, d] = data.Pixels[i * data.Dimension + d];
        return x;
    }

    static Dictionary<string, float[]> RunOnnx(string path, string input, float[,] x)
    {
        using var session = new InferenceSession(path);
        var tensor = new DenseTensor<float>(x.Cast<float>().ToArray(), [x.GetLength(0), x.GetLength(1)]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(input, tensor)]);
        return results.ToDictionary(r => r.Name, r => r.AsEnumerable<float>().ToArray());
    }

    static void Close(float[,] expected, float[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        var flat = expected.Cast<float>().ToArray();
        double worst = flat.Zip(actual, (e, a) => Math.Abs(e - a) / Math.Max(1.0, Math.Abs(e))).Max();
        Assert.True(worst < tolerance, $"largest difference {worst:E2}");
    }

    [Theory]
    [InlineData(DecoderLikelihood.Bernoulli, 1)]
    [InlineData(DecoderLikelihood.GaussianSigmoidMean, 1)]
    [InlineData(DecoderLikelihood.LinearGaussian, 1)]
    [InlineData(DecoderLikelihood.Bernoulli, 2)]
    [InlineData(DecoderLikelihood.GaussianSigmoidMean, 3)]
    public void TheExportedNetworksComputeEncodeAndDecodeToFloat32Rounding(DecoderLikelihood likelihood, int hiddenLayers)
    {
        // A trained model, so that the weights are not near zero.
        var trainer = new AevbTrainer(new VaeModelOptions { HiddenUnits = 40, HiddenLayers = hiddenLayers, LatentDimensions = 3, Likelihood = likelihood }, SmallMnist.Aevb());
        trainer.Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 20_000, EvaluateEvery = 0 });
        var model = trainer.Model;
        string dir = TestEnvironment.NewTempDirectory();
        var x = Rows(SmallMnist.Test, 64);

        string encoder = Path.Combine(dir, "encoder.onnx");
        model.ExportOnnx(encoder, OnnxPart.Encoder);
        var q = model.Encode(x);
        var onnx = RunOnnx(encoder, "x", x);
        Close(q.Mean, onnx["mean"], 1e-5);
        Close(q.LogVariance, onnx["log_variance"], 1e-5);

        string decoder = Path.Combine(dir, "decoder.onnx");
        model.ExportOnnx(decoder, OnnxPart.Decoder);
        var decoded = RunOnnx(decoder, "z", q.Mean);
        Close(model.Decode(q.Mean), decoded["mean"], 1e-5);
        Assert.Equal(likelihood != DecoderLikelihood.Bernoulli, decoded.ContainsKey("log_variance"));

        // Equal models, equal files.
        string again = Path.Combine(dir, "again.onnx");
        model.ExportOnnx(again, OnnxPart.Encoder);
        Assert.Equal(File.ReadAllBytes(encoder), File.ReadAllBytes(again));
    }

    [Fact]
    public void VaeExportWritesTheEncoderBesideTheCheckpoint()
    {
        string dir = TestEnvironment.NewTempDirectory();
        new AevbTrainer(SmallMnist.Model, SmallMnist.Aevb()).Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 1_000, EvaluateEvery = 0, RunDirectory = dir });
        var (code, output, err) = Cli.Vae.Run("export", "--checkpoint", dir, "--format", "onnx", "--part", "encoder");
        Assert.True(code == VaeCommand.Ok, err);
        Assert.Contains("input x [batch, 784], outputs mean and log_variance [batch, 3]", output);
        using var session = new InferenceSession(Path.Combine(dir, "encoder.onnx"));
        Assert.Equal(["x"], session.InputMetadata.Keys);
        Assert.Equal(VaeCommand.BadUsage, Cli.Vae.Run("export", "--checkpoint", dir, "--format", "tflite").Code);
    }

    [Theory]
    [InlineData(DecoderLikelihood.Bernoulli, 1)]
    [InlineData(DecoderLikelihood.GaussianSigmoidMean, 2)]
    [InlineData(DecoderLikelihood.LinearGaussian, 1)]
    public async Task OnnxItselfAcceptsTheExportedNetworksAndOneRowRunsAsTheModel(DecoderLikelihood likelihood, int hiddenLayers)
    {
        // The ONNX project's own checker (Debian's python3-onnx, full_check: the graph, its opset-17 operators and shape
        // inference), not our writer's idea of the format; then a batch of one row through ONNX Runtime.
        Assert.True(File.Exists("/usr/bin/python3"), "the test needs Debian's python3-onnx (apt-get install -y python3-onnx)");
        using var model = VariationalAutoEncoder.Create(new VaeModelOptions { HiddenUnits = 20, HiddenLayers = hiddenLayers, LatentDimensions = 3, Likelihood = likelihood }, seed: 4);
        string dir = TestEnvironment.NewTempDirectory();
        string encoder = Path.Combine(dir, "encoder.onnx"), decoder = Path.Combine(dir, "decoder.onnx");
        model.ExportOnnx(encoder, OnnxPart.Encoder);
        model.ExportOnnx(decoder, OnnxPart.Decoder);
        const string Check = """
            import onnx, sys
            for path in sys.argv[1:]:
                m = onnx.load(path)
                onnx.checker.check_model(m, full_check=True)
                inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
                print(path, m.ir_version, m.opset_import[0].version, ",".join(o.name for o in inferred.graph.output))
            """;
        var (code, output, errors) = await TestEnvironment.RunProcessAsync("/usr/bin/python3", ["-c", Check, encoder, decoder], dir);
        Assert.True(code == 0, $"onnx.checker refused an exported network: {errors}");
        Assert.Contains($"{encoder} 8 17 mean,log_variance", output);
        Assert.Contains($"{decoder} 8 17 {(likelihood == DecoderLikelihood.Bernoulli ? "mean" : "mean,log_variance")}", output);

        var x = Rows(SmallMnist.Test, 1);
        var q = model.Encode(x);
        Close(q.Mean, RunOnnx(encoder, "x", x)["mean"], 1e-5);
        Close(model.Decode(q.Mean), RunOnnx(decoder, "z", q.Mean)["mean"], 1e-5);
    }
}
