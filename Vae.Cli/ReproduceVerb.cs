using System.Globalization;
using Vae.Experiments;

namespace Vae.Cli;

/// <summary><c>vae reproduce figure2</c>: the paper's experiments, resumable, with results.json and figures.</summary>
static class ReproduceVerb
{
    /// <summary>The default budget per run: minutes on a 2-core machine (the paper: about 10⁸).</summary>
    public const long DefaultBudget = 1_000_000;

    static readonly string[] Valued = ["dataset", "cache", "frey-face", "latent", "budget", "seed", "threads", "out", "train-eval"];

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var a = new Arguments("reproduce", args, Valued, []);
        a.AtMostPositional(1, "reproduce");
        string experiment = a.Positional.Count == 1 ? a.Positional[0] : throw new UsageException("reproduce: name an experiment: figure2");
        return experiment switch
        {
            "figure2" => Figure2Run(a, stdout, stderr, cancel),
            _ => throw new UsageException($"reproduce: unknown experiment '{experiment}', expected figure2"),
        };
    }

    static int Figure2Run(Arguments a, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var data = new DataChoice(a.Choice("dataset", "mnist", "mnist", "frey-face"), null, null, a.String("cache"), a.String("frey-face"));
        var preset = data.Dataset == "mnist" ? Figure2Options.Mnist : Figure2Options.FreyFace;
        int threads = (int)a.Integer("threads", Environment.ProcessorCount, 1, 1024);
        var options = preset with
        {
            LatentDimensions = a.IntegerList("latent", preset.LatentDimensions, 1, 100_000),
            Budget = a.Integer("budget", DefaultBudget, 1),
            Seed = a.Integer("seed", 0, 0),
            TrainEvaluationLimit = a.Has("train-eval") ? (int)a.Integer("train-eval", 0, 1, int.MaxValue) : preset.TrainEvaluationLimit,
            OutputDirectory = a.String("out") ?? preset.OutputDirectory,
        };
        Vae.Core.Torch.setThreads(threads);
        stderr.WriteLine($"loading {data.Dataset}");
        var set = data.Load(stderr);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Figure 2 on {set.Description}: AEVB and wake-sleep, J = {string.Join(", ", options.LatentDimensions)}, {options.HiddenUnits} hidden units, budget {options.Budget:N0} samples per run, seed {options.Seed}, {threads} threads; {options.OutputDirectory}"));
        var results = Figure2.Run(set, options, new Progress<string>(stdout.WriteLine), new ProgressBar(stderr), cancel);
        ProgressBar.Clear(stderr);
        return Finish(results, options.OutputDirectory, "figure2.png", stdout);
    }

    static int Finish(ExperimentResults results, string dir, string figure, TextWriter stdout)
    {
        bool cancelled = results.Settings.TryGetValue("cancelled", out var c) && c == "True";
        stdout.WriteLine($"{"J",5} {"algorithm",-11} {"samples",12} {"train",10} {"test",10}");
        foreach (var r in results.Runs.Where(r => r.Series.Count > 0))
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.LatentDimensions,5} {r.Algorithm,-11} {r.Series[^1].SamplesSeen,12:N0} {r.Series[^1].TrainBound,10:F2} {r.Series[^1].TestBound,10:F2}"));
        stdout.WriteLine(cancelled
            ? $"interrupted: every run keeps its checkpoint; run the same command again to continue ({Path.Combine(dir, "results.json")})"
            : $"wrote {Path.Combine(dir, "results.json")} and {Path.Combine(dir, figure)} in {results.WallSeconds:F0} s");
        return cancelled ? VaeCommand.Interrupted : VaeCommand.Ok;
    }
}
