using System.Globalization;
using System.Text.Json;
using Vae.Cli;
using Vae.Core;

namespace Vae.Tests.Training;

/// <summary>Models as safetensors files: read back exactly by Vae, refused with a CheckpointException when corrupt, and
/// read by PyTorch itself (Debian's python3-torch), whose bound and encoder agree with Vae's.</summary>
public class SafetensorsTests
{
    static VariationalAutoEncoder Trained(int hiddenLayers = 1)
    {
        var trainer = new AevbTrainer(new VaeModelOptions { HiddenUnits = 40, HiddenLayers = hiddenLayers, LatentDimensions = 3 }, SmallMnist.Aevb());
        trainer.Fit(SmallMnist.Train, new TrainingOptions { TotalSamples = 20_000, EvaluateEvery = 0 });
        return trainer.Model;
    }

    [Fact]
    public void AModelSavedAsSafetensorsLoadsWithTheSameParametersAndEqualModelsGiveEqualFiles()
    {
        var model = Trained();
        string dir = TestEnvironment.NewTempDirectory();
        string a = Path.Combine(dir, "a.safetensors"), b = Path.Combine(dir, "b.safetensors"), vae = Path.Combine(dir, "m.vae");
        model.Save(a);
        model.Save(b);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        var loaded = VariationalAutoEncoder.Load(a);
        // Byte for byte the parameters of the original, in the project's own format too.
        loaded.Save(vae);
        string original = Path.Combine(dir, "o.vae");
        model.Save(original);
        Assert.Equal(File.ReadAllBytes(original), File.ReadAllBytes(vae));
        // The header is the safetensors layout: JSON after an 8-byte length, tensors under their checkpoint names.
        var bytes = File.ReadAllBytes(a);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)BitConverter.ToUInt64(bytes, 0)));
        Assert.Equal("40,784", string.Join(",", header.RootElement.GetProperty("encoder.hidden.weight").GetProperty("shape").EnumerateArray().Select(d => d.GetInt64())));
        Assert.Equal("784", header.RootElement.GetProperty("__metadata__").GetProperty("model.input").GetString());
    }

    [Theory]
    [InlineData("data")]      // a value changed: the SHA-256 no longer matches
    [InlineData("shape")]     // a shape that disagrees with the offsets
    [InlineData("truncated")] // the file cut short
    [InlineData("dtype")]     // a dtype not read here
    public void ACorruptSafetensorsFileIsRefusedNamingTheFile(string damage)
    {
        string path = Path.Combine(TestEnvironment.NewTempDirectory(), "m.safetensors");
        VariationalAutoEncoder.Create(SmallMnist.Model).Save(path);
        var bytes = File.ReadAllBytes(path);
        string text = System.Text.Encoding.Latin1.GetString(bytes);
        bytes = damage switch
        {
            "data" => bytes.Select((x, i) => i == bytes.Length - 3 ? (byte)(x ^ 0x10) : x).ToArray(),
            "shape" => System.Text.Encoding.Latin1.GetBytes(text.Replace("\"shape\":[40,784]", "\"shape\":[41,784]")),
            "truncated" => bytes[..(bytes.Length - 100)],
            _ => System.Text.Encoding.Latin1.GetBytes(text.Replace("\"dtype\":\"F32\"", "\"dtype\":\"I64\"")),
        };
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CheckpointException>(() => VariationalAutoEncoder.Load(path));
        Assert.StartsWith(path + ": ", e.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task PyTorchReadsTheExportAndComputesTheBoundVaeComputes(int hiddenLayers)
    {
        Assert.True(File.Exists("/usr/bin/python3"), "the test needs Debian's python3-torch (apt-get install -y python3-torch)");
        var model = Trained(hiddenLayers);
        string dir = TestEnvironment.NewTempDirectory();
        string checkpoint = Path.Combine(dir, "run");
        Directory.CreateDirectory(checkpoint);
        model.Save(Path.Combine(checkpoint, Trainer.CheckpointFileName));
        var (code, output, err) = Cli.Vae.Run("export", "--checkpoint", checkpoint, "--format", "safetensors");
        Assert.True(code == VaeCommand.Ok, err);
        string exported = Path.Combine(checkpoint, "model.safetensors");
        Assert.Contains(exported, output);

        var test = new Vae.Data.ImageData(500, 28, 28, SmallMnist.Test.Pixels[..(500 * 784)]);
        string images = Path.Combine(dir, "test.npy");
        File.WriteAllBytes(images, Vae.Core.Data.Npy.encode(false, new Vae.Core.Data.Images(test.Count, 28, 28, test.Pixels.ToArray())));
        var python = await TestEnvironment.RunProcessAsync("/usr/bin/python3",
            [Path.Combine(TestEnvironment.RepositoryRoot, "scripts", "pytorch-bound.py"), exported, images, "50"], dir);
        Assert.True(python.ExitCode == 0, python.Errors);
        using var result = JsonDocument.Parse(python.Output);
        double torchBound = result.RootElement.GetProperty("bound").GetDouble();
        double vaeBound = model.LowerBound(test, SgvbEstimator.B, seed: 1);
        // Two Monte Carlo estimates of the same bound (50 draws per image in PyTorch, one in Vae, 500 images).
        Assert.InRange(torchBound - vaeBound, -0.5, 0.5);
        var q = model.Encode(Enumerable.Range(0, 3).Aggregate(new float[3, 784], (x, i) => { for (int d = 0; d < 784; d++) x[i, d] = test.Pixels[i * 784 + d]; return x; }));
        var torchMeans = result.RootElement.GetProperty("encoder_mean").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
        for (int i = 0; i < 3; i++) for (int j = 0; j < 3; j++) Assert.Equal(q.Mean[i, j], torchMeans[i][j], 1e-5);
    }
}
