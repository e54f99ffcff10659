using System.Text.Json;

namespace Vae.Tests.Training;

/// <summary><see cref="VariationalAutoEncoder.Encode(float[,])"/>, <see cref="VariationalAutoEncoder.Decode(float[,])"/>
/// and <see cref="VariationalAutoEncoder.Reconstruct"/> of trained models against the paper's networks (Appendix C)
/// computed here in float64 from the weights as the model file stores them, read with a reader of the safetensors
/// format written for this test: no libtorch, no code of the library.</summary>
public class IndependentValueTests
{
    /// <summary>A safetensors file's float32 tensors by name, as [rows, columns] (a vector as one row).</summary>
    static Dictionary<string, double[,]> ReadTensors(string path)
    {
        byte[] file = File.ReadAllBytes(path);
        long headerLength = BitConverter.ToInt64(file, 0);
        using var header = JsonDocument.Parse(file.AsMemory(8, (int)headerLength));
        var tensors = new Dictionary<string, double[,]>();
        foreach (var entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            Assert.Equal("F32", entry.Value.GetProperty("dtype").GetString());
            var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
            long start = 8 + headerLength + entry.Value.GetProperty("data_offsets")[0].GetInt64();
            int rows = shape.Length == 2 ? shape[0] : 1, columns = shape[^1];
            var values = new double[rows, columns];
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < columns; c++)
                    values[r, c] = BitConverter.ToSingle(file, (int)(start + 4L * (r * columns + c)));
            tensors[entry.Name] = values;
        }
        return tensors;
    }

    /// <summary>W v + b for a layer stored as PyTorch's nn.Linear ([out, in] weight, [out] bias), then f.</summary>
    static double[] Layer(Dictionary<string, double[,]> t, string name, double[] v, Func<double, double> f)
    {
        var w = t[name + ".weight"];
        var b = t[name + ".bias"];
        var y = new double[w.GetLength(0)];
        for (int o = 0; o < y.Length; o++)
        {
            double s = b[0, o];
            for (int i = 0; i < v.Length; i++) s += w[o, i] * v[i];
            y[o] = f(s);
        }
        return y;
    }

    static double Sigmoid(double a) => 1 / (1 + Math.Exp(-a));

    static float[,] Inputs(int rows, int dimension, int seed)
    {
        var random = new Random(seed);
        var x = new float[rows, dimension];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < dimension; c++) x[r, c] = (float)random.NextDouble();
        return x;
    }

    static double[] Row(float[,] x, int r) => Enumerable.Range(0, x.GetLength(1)).Select(c => (double)x[r, c]).ToArray();

    static void Near(double expected, float actual, double tolerance, string what) =>
        Assert.True(Math.Abs(expected - actual) <= tolerance * (1 + Math.Abs(expected)), $"{what}: expected {expected:R}, got {actual:R}");

    /// <summary>Figure 2's MNIST J = 20 model (Bernoulli decoder) and a Frey Face J = 5 model (Gaussian decoder with
    /// sigmoid means): q(z|x)'s mean and log-variance from tanh(W x + b) (eq. 12's MLP), the decoder's mean
    /// sigmoid(W' tanh(W z + b) + b'), and a reconstruction as the decoder's mean at the encoder's mean.</summary>
    [Theory]
    [InlineData("figure2-mnist/j20-aevb.safetensors", "decoder.logits")]
    [InlineData("figure2-frey-face/j5-aevb-seed1.safetensors", "decoder.mean")]
    public void EncodeDecodeAndReconstructEqualTheNetworksComputedIndependently(string file, string decoderOutput)
    {
        string path = Path.Combine(TestEnvironment.RepositoryRoot, "models", file);
        var t = ReadTensors(path);
        using var model = VariationalAutoEncoder.Load(path);
        int d = model.Options.InputDimension, j = model.Options.LatentDimensions;
        var x = Inputs(5, d, seed: 3);
        var code = model.Encode(x);
        var z = new float[5, j];
        var random = new Random(4);
        for (int r = 0; r < 5; r++) for (int k = 0; k < j; k++) z[r, k] = (float)(2 * random.NextDouble() - 1);
        var decoded = model.Decode(z);
        var reconstructed = model.Reconstruct(x);
        for (int r = 0; r < 5; r++)
        {
            var h = Layer(t, "encoder.hidden", Row(x, r), Math.Tanh);
            var mean = Layer(t, "encoder.mean", h, v => v);
            var logVariance = Layer(t, "encoder.logvar", h, v => v);
            for (int k = 0; k < j; k++)
            {
                Near(mean[k], code.Mean[r, k], 1e-4, $"{file}: encoder mean [{r}, {k}]");
                Near(logVariance[k], code.LogVariance[r, k], 1e-4, $"{file}: encoder log-variance [{r}, {k}]");
            }
            double[] Decoder(double[] latent) => Layer(t, decoderOutput, Layer(t, "decoder.hidden", latent, Math.Tanh), Sigmoid);
            var probabilities = Decoder(Row(z, r));
            var reconstruction = Decoder(mean);
            for (int i = 0; i < d; i++)
            {
                Near(probabilities[i], decoded[r, i], 1e-5, $"{file}: decoder mean [{r}, {i}]");
                Near(reconstruction[i], reconstructed[r, i], 1e-5, $"{file}: reconstruction [{r}, {i}]");
            }
        }
    }
}
