using System.CommandLine;
using System.Globalization;
using Vae.Data;
using Vae.Experiments;

namespace Vae.Cli;

/// <summary><c>vae score</c>: per-datapoint log p(x) estimates with standard errors, and lower bounds, into a CSV file.</summary>
static class ScoreVerb
{
    static readonly Option<long> K = Opt.Integer("--k", "importance samples per datapoint", new ScoreOptions().ImportanceSamples, 1, 1_000_000);
    static readonly Option<string> DataFile = Opt.Text("--data-file", "score every image of this .npy or IDX image file (default: the checkpoint's data set)", "FILE");
    static readonly Option<string> Split = Opt.Choice("--split", "without --data-file: the data set's test or training images", "test", "test", "train");
    static readonly Option<string> Inliers = Opt.Text("--inliers", "a scores CSV of in-distribution data: also print the AUROC of log p(x) and of the bound separating those rows (above) from these", "FILE");
    static readonly Option<string> Out = Opt.Text("--out", "the CSV file to write (row, log_likelihood, standard_error, elbo, elbo_standard_error)", "FILE");

    /// <summary><c>vae score</c>.</summary>
    public static Command Command(TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var command = new Command("score", "Score each datapoint: its importance-weighted log p(x) with a standard error, and its lower bound (for anomaly and out-of-distribution detection)");
        foreach (var o in (Option[])[Common.Checkpoint, DataFile, Split, K, Common.Seed, Out, Inliers, Common.Threads, Common.Cache, Common.FreyFace]) command.Add(o);
        command.SetAction(p => Run(new Arguments(p), stdout, stderr, cancel));
        return command;
    }

    static int Run(Arguments a, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        string path = Trainer.CheckpointPath(a.Get(Common.Checkpoint));
        if (a.Get(Inliers) is string given && !File.Exists(given)) throw new UsageException($"--inliers: {given}: no such file");
        string output = a.Get(Out) ?? throw new UsageException("score: --out FILE is required");
        if (a.Has(Split) && a.Has(DataFile)) throw new UsageException("score: --split chooses from the checkpoint's data set; --data-file scores every row of its file");
        a.Threads(stderr);
        if (!File.Exists(path)) throw new UsageException($"--checkpoint: {path}: no such file");
        var settings = VariationalAutoEncoder.ReadSettings(path);
        using var model = VariationalAutoEncoder.Load(path);
        ImageData data;
        string description;
        if (a.Get(DataFile) is string file)
        {
            if (!File.Exists(file)) throw new UsageException($"--data-file: {file}: no such file");
            data = DataSets.ReadImages(file);
            description = $"{file} ({data.Count} rows)";
        }
        else
        {
            var set = DataChoice.FromFields(settings, a.Get(Common.Cache), a.Get(Common.FreyFace)).Load(stderr);
            bool train = a.Get(Split) == "train";
            data = train ? set.Train : set.Test;
            description = $"{set.Description}, {(train ? "training" : "test")} images";
        }
        bool binary = EndPoint.TrainedOnBinaryImages(settings);
        data = EndPoint.ForModel(settings, data, ImageData.TestBinarizationSeed);
        var options = new ScoreOptions { ImportanceSamples = (int)a.Get(K), Seed = a.Get(Common.Seed) };
        var scores = model.Score(data, options, cancel);
        DatapointScores.WriteCsv(output, scores);
        double mean = scores.Average(s => s.LogLikelihood);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"scored {scores.Length} datapoints of {description}{(binary ? ", binarized once (seed " + ImageData.TestBinarizationSeed + ")" : "")} with K = {options.ImportanceSamples}: mean log p(x) {mean:F3} nats; wrote {output}"));
        if (a.Get(Inliers) is string inliers)
        {
            var reference = DatapointScores.ReadCsv(inliers);
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"AUROC, the {reference.Count} rows of {inliers} above these {scores.Length}: log p(x) {DatapointScores.Auroc([.. reference.Select(s => s.LogLikelihood)], [.. scores.Select(s => s.LogLikelihood)]):F4}, lower bound {DatapointScores.Auroc([.. reference.Select(s => s.Elbo)], [.. scores.Select(s => s.Elbo)]):F4}"));
        }
        return VaeCommand.Ok;
    }
}
