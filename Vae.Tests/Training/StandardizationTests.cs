using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Vae.Data;

namespace Vae.Tests.Training;

/// <summary>Per-feature standardisation of a model's inputs (<see cref="TrainingOptions.StandardizeInputs"/>): fitted on
/// the training data, kept with the model, and applied by every method so that values are in the data's units.</summary>
public class StandardizationTests
{
    // Six correlated features on scales from 0.01 to 400 around offsets up to 1000: two factors plus noise.
    static readonly double[] Offset = [1000, -5, 0.02, 30, 0, 7], Spread = [400, 2, 0.01, 25, 1, 3];

    internal static ImageData Rows(int n, int seed)
    {
        var random = new Random(seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var values = new float[n * 6];
        for (int i = 0; i < n; i++)
        {
            double a = Normal(), b = Normal();
            for (int d = 0; d < 6; d++) values[i * 6 + d] = (float)(Offset[d] + Spread[d] * (((d % 2 == 0) ? a : b) + 0.3 * ((d < 3) ? b : a) + 0.2 * Normal()));
        }
        return new ImageData(n, 1, 6, values);
    }

    static readonly Lazy<(AevbTrainer Trainer, ImageData Train, ImageData Test, string Directory, EvaluationResult Last)> Trained = new(() =>
    {
        var train = Rows(1000, 1);
        var test = Rows(200, 2);
        var trainer = new AevbTrainer(new VaeModelOptions { InputDimension = 6, HiddenUnits = 10, LatentDimensions = 2, Likelihood = DecoderLikelihood.Gaussian },
                                      new AevbOptions { StepSize = 0.05, BatchSize = 50, Seed = 3 });
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "run");
        var summary = trainer.Fit(train, new TrainingOptions { TotalSamples = 50_000, EvaluateEvery = 25_000, TestData = test, StandardizeInputs = true, RunDirectory = dir, TensorBoard = false });
        return (trainer, train, test, dir, summary.Evaluations[^1]);
    });

    /// <summary>The rows standardised by hand in float64 with the fitted means and scales.</summary>
    static float[,] ByHand(ImageData x, InputStandardization s)
    {
        var result = new float[x.Count, x.Dimension];
        for (int i = 0; i < x.Count; i++)
            for (int d = 0; d < x.Dimension; d++) result[i, d] = (float)((x.Pixels[i * x.Dimension + d] - (double)s.Mean[d]) / s.Scale[d]);
        return result;
    }

    static float[,] Copy(ImageData x)
    {
        var result = new float[x.Count, x.Dimension];
        for (int i = 0; i < x.Count; i++) for (int d = 0; d < x.Dimension; d++) result[i, d] = x.Pixels[i * x.Dimension + d];
        return result;
    }

    static double Worst(float[,] a, float[,] b) => a.Cast<float>().Zip(b.Cast<float>(), (p, q) => Math.Abs(p - q) / Math.Max(1.0, Math.Abs(p))).Max();

    [Fact]
    public void TheStandardizationIsTheTrainingDatasMeansAndStandardDeviations()
    {
        var (trainer, train, _, _, _) = Trained.Value;
        var s = trainer.Model.Standardization!;
        for (int d = 0; d < 6; d++)
        {
            var column = Enumerable.Range(0, train.Count).Select(i => (double)train.Pixels[i * 6 + d]).ToArray();
            double mean = column.Average(), sd = Math.Sqrt(column.Sum(v => (v - mean) * (v - mean)) / column.Length);
            Assert.Equal(mean, s.Mean[d], Math.Abs(mean) * 1e-6 + 1e-6);
            Assert.Equal(sd, s.Scale[d], sd * 1e-5);
        }
        Assert.Equal(s.Scale.Sum(v => Math.Log(v)), s.LogScaleSum, 1e-9);
    }

    [Fact]
    public void EveryMethodWorksInTheDatasUnits()
    {
        var (trainer, _, test, _, last) = Trained.Value;
        var model = trainer.Model;
        var s = model.Standardization!;
        // The same networks without the standardisation, fed by hand.
        using var plain = new VariationalAutoEncoder(model.Core, ownsTensors: false);
        var x = Copy(test.First(50));
        var standardized = ByHand(test.First(50), s);
        Assert.True(Worst(plain.Encode(standardized).Mean, model.Encode(x).Mean) < 1e-5);
        var z = model.Encode(x).Mean;
        var decoded = plain.Decode(z);
        for (int i = 0; i < decoded.GetLength(0); i++) for (int d = 0; d < 6; d++) decoded[i, d] = decoded[i, d] * s.Scale[d] + s.Mean[d];
        Assert.True(Worst(decoded, model.Decode(z)) < 1e-5);
        // Densities: log p(x) = log p'(x') - sum log scale, with the same draws.
        var standardizedData = new ImageData(50, 1, 6, standardized.Cast<float>().ToArray());
        Assert.Equal(plain.LowerBound(standardizedData, seed: 4) - s.LogScaleSum, model.LowerBound(test.First(50), seed: 4), 1e-4);
        Assert.Equal(plain.LogLikelihood(standardizedData, k: 100, seed: 4) - s.LogScaleSum, model.LogLikelihood(test.First(50), k: 100, seed: 4), 1e-4);
        var scores = model.Score(x, new ScoreOptions { ImportanceSamples = 100, Seed = 4 });
        Assert.Equal(model.LogLikelihood(test.First(50), k: 100, seed: 4), scores.Average(r => r.LogLikelihood), 1e-4);
        // The run's evaluations are in the data's units too (the standardised space's bound is sum log scale, about
        // 6.4 nats, higher): within the evaluation noise of the model's own bound on the same images.
        Assert.True(Math.Abs(last.TestBound - model.LowerBound(test, seed: 9)) < 1.5, $"run {last.TestBound:F2}, model {model.LowerBound(test, seed: 9):F2}, sum log scale {s.LogScaleSum:F2}");
    }

    [Fact]
    public void TheStandardizationTravelsWithTheModelFileTheCheckpointAndTheOnnxExport()
    {
        var (trainer, _, test, dir, _) = Trained.Value;
        var model = trainer.Model;
        var x = Copy(test.First(20));
        string file = Path.Combine(TestEnvironment.NewTempDirectory(), "model.safetensors");
        model.Save(file);
        using (var loaded = VariationalAutoEncoder.Load(file))
        {
            Assert.Equal(model.Standardization!.Mean, loaded.Standardization!.Mean);
            Assert.Equal(model.Standardization.Scale, loaded.Standardization.Scale);
            Assert.Equal(0, Worst(model.Encode(x).Mean, loaded.Encode(x).Mean));
        }
        using (var resumed = Trainer.Resume(dir)) Assert.Equal(model.Standardization.Scale, resumed.Model.Standardization!.Scale);
        Assert.Contains("standardize = per feature, fitted on the training set", File.ReadAllText(Path.Combine(dir, "options.txt")));

        string encoder = Path.Combine(TestEnvironment.NewTempDirectory(), "encoder.onnx"), decoder = Path.ChangeExtension(encoder, ".decoder.onnx");
        model.ExportOnnx(encoder, OnnxPart.Encoder);
        model.ExportOnnx(decoder, OnnxPart.Decoder);
        float[] Run(string path, string input, float[,] values, string output)
        {
            using var session = new InferenceSession(path);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor(input, new DenseTensor<float>(values.Cast<float>().ToArray(), [values.GetLength(0), values.GetLength(1)]))]);
            return results.First(r => r.Name == output).AsEnumerable<float>().ToArray();
        }
        var q = model.Encode(x);
        Assert.True(q.Mean.Cast<float>().Zip(Run(encoder, "x", x, "mean"), (a, b) => Math.Abs(a - b)).Max() < 1e-4);
        Assert.True(model.Decode(q.Mean).Cast<float>().Zip(Run(decoder, "z", q.Mean, "mean"), (a, b) => Math.Abs(a - b) / Math.Max(1, Math.Abs(a))).Max() < 1e-5);
        // The decoder's log-variance in the data's units: the standardised space's plus 2 log scale.
        string plainDecoder = Path.ChangeExtension(encoder, ".plain.onnx");
        using (var plain = new VariationalAutoEncoder(model.Core, ownsTensors: false)) plain.ExportOnnx(plainDecoder, OnnxPart.Decoder);
        float[] logVariance = Run(decoder, "z", q.Mean, "log_variance"), plainLogVariance = Run(plainDecoder, "z", q.Mean, "log_variance");
        for (int i = 0; i < logVariance.Length; i++)
            Assert.Equal(plainLogVariance[i] + 2 * Math.Log(model.Standardization.Scale[i % 6]), logVariance[i], 1e-4);
    }

    [Fact]
    public void ABernoulliDecoderRefusesStandardization()
    {
        var trainer = new AevbTrainer(SmallMnist.Model, SmallMnist.Aevb());
        var e = Assert.Throws<ArgumentException>(() => trainer.Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 1000, StandardizeInputs = true }));
        Assert.Contains("StandardizeInputs: applies to Gaussian and linear-Gaussian decoders", e.Message);
    }
}
