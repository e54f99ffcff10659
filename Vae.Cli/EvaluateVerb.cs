using System.Globalization;
using System.Text.Json;
using Vae.Data;

namespace Vae.Cli;

/// <summary><c>vae evaluate</c>: the test bound and the K-sample importance-weighted log-likelihood of a checkpoint.</summary>
static class EvaluateVerb
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var a = new Arguments("evaluate", args, ["checkpoint", "k", "points", "seed", "threads", "cache", "frey-face"], ["json"]);
        a.AtMostPositional(0, "evaluate");
        string path = a.String("checkpoint") ?? throw new UsageException("evaluate: --checkpoint FILE is required");
        if (Directory.Exists(path)) path = Path.Combine(path, AevbTrainer.CheckpointFileName);
        int k = (int)a.Integer("k", 5000, 1, 1_000_000);
        long points = a.Integer("points", 0, 1);
        long seed = a.Integer("seed", 0, 0);
        Vae.Core.Torch.setThreads((int)a.Integer("threads", Environment.ProcessorCount, 1, 1024));
        if (!File.Exists(path)) throw new UsageException($"--checkpoint: {path}: no such file");

        var contents = Vae.Core.Checkpoint.load(path);
        var model = VariationalAutoEncoder.Load(path);
        var data = DataChoice.FromFields(contents.Fields.ToDictionary(kv => kv.Key, kv => kv.Value), a.String("cache"), a.String("frey-face"));
        var test = data.Load(stderr).Test;
        if (points > 0 && points < test.Count) test = new ImageData((int)points, test.Height, test.Width, test.Pixels[..(int)(points * test.Dimension)]);
        double bound = model.LowerBound(test, SgvbEstimator.B, seed);
        double iwae = model.LogLikelihood(test, k, seed);
        if (a.Has("json"))
        {
            stdout.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["checkpoint"] = path, ["dataset"] = data.Dataset, ["test_points"] = test.Count, ["k"] = k,
                ["test_bound"] = bound, ["test_iwae"] = iwae,
            }));
        }
        else
        {
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{path}: {test.Count} test images of {data.Dataset}"));
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"test lower bound per datapoint:              {bound:F3} nats"));
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"test log-likelihood (importance-weighted, K = {k}): {iwae:F3} nats"));
        }
        return VaeCommand.Ok;
    }
}
