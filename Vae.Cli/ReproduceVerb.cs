using System.Globalization;
using Vae.Experiments;

namespace Vae.Cli;

/// <summary><c>vae reproduce figure2</c>: the paper's experiments, resumable, with results.json and figures.</summary>
static class ReproduceVerb
{
    /// <summary>The default budget per run: minutes on a 2-core machine (the paper: about 10⁸).</summary>
    public const long DefaultBudget = 1_000_000;

    static readonly string[] Valued = ["dataset", "cache", "frey-face", "latent", "budget", "seed", "threads", "out", "train-eval", "ntrain", "points", "burn-in", "evaluations", "algorithms", "step-size",
                                       "task", .. ExecutorVerb.Valued];

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var a = new Arguments("reproduce", args, Valued, ["collect", .. ExecutorVerb.Flags]);
        a.AtMostPositional(1, "reproduce");
        string experiment = a.Positional.Count == 1 ? a.Positional[0] : throw new UsageException("reproduce: name an experiment: figure2, figure3 or manifolds");
        return experiment switch
        {
            "figure2" => Figure2Run(a, stdout, stderr, cancel),
            "figure3" => Figure3Run(a, stdout, stderr, cancel),
            "manifolds" => ManifoldsRun(a, stdout, stderr, cancel),
            _ => throw new UsageException($"reproduce: unknown experiment '{experiment}', expected figure2, figure3 or manifolds"),
        };
    }

    static int Figure2Run(Arguments a, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var data = new DataChoice(a.Choice("dataset", "mnist", "mnist", "frey-face"), null, null, a.String("cache"), a.String("frey-face"));
        var preset = data.Dataset == "mnist" ? Figure2Options.Mnist : Figure2Options.FreyFace;
        int threads = a.Threads(stderr);
        var options = preset with
        {
            LatentDimensions = a.IntegerList("latent", preset.LatentDimensions, 1, 100_000),
            Budget = a.Integer("budget", DefaultBudget, 1),
            Seed = a.Integer("seed", 0, 0),
            TrainEvaluationLimit = a.Has("train-eval") ? (int)a.Integer("train-eval", 0, 1, int.MaxValue) : preset.TrainEvaluationLimit,
            OutputDirectory = a.String("out") ?? preset.OutputDirectory,
            Algorithms = Algorithms(a, Figure2.Algorithms),
            StepSize = a.StepSizeOrAuto(preset.StepSize ?? 0.02),
        };
        var executor = new ExecutorVerb(a, "reproduce", "figure2");
        if (executor.Handles(Figure2.Tasks(options), options.OutputDirectory, stdout, stderr, cancel) is int submitted) return submitted;
        stderr.WriteLine($"loading {data.Dataset}");
        var set = data.Load(stderr);
        if (a.Has("collect")) return Collected(Figure2.Collect(set, options), options.OutputDirectory, "figure2.png", stdout);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Figure 2 on {set.Description}: {string.Join(" and ", options.Algorithms)}, J = {string.Join(", ", options.LatentDimensions)}, {options.HiddenUnits} hidden units, budget {options.Budget:N0} samples per run, step size {options.StepSize?.ToString(CultureInfo.InvariantCulture) ?? "chosen per run (section 5)"}, seed {options.Seed}, {threads} threads; {options.OutputDirectory}"));
        if (executor.Task is int task)
            return TaskRun(Figure2.RunTask(set, options, task, new Lines(stdout), new ProgressBar(stderr), cancel), stdout, stderr);
        var results = Figure2.Run(set, options, new Lines(stdout), new ProgressBar(stderr), cancel);
        ProgressBar.Clear(stderr);
        return Finish(results, options.OutputDirectory, "figure2.png", stdout);
    }

    static int Figure3Run(Arguments a, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        int ntrain = (int)a.Integer("ntrain", 1000, 1, 60_000);
        var data = new DataChoice("mnist", null, null, a.String("cache"), null, ntrain);
        var defaults = new Figure3Options();
        int threads = a.Threads(stderr);
        var options = defaults with
        {
            Budget = a.Integer("budget", defaults.Budget, 1),
            Evaluations = (int)a.Integer("evaluations", defaults.Evaluations, 1, 1000),
            Points = (int)a.Integer("points", defaults.Points, 1, 10_000),
            Estimator = defaults.Estimator with { BurnIn = (int)a.Integer("burn-in", defaults.Estimator.BurnIn, 0, 1_000_000) },
            Seed = a.Integer("seed", 0, 0),
            StepSize = a.StepSizeOrAuto(defaults.StepSize ?? 0.02),
            OutputDirectory = a.String("out") ?? Path.Combine("runs", $"figure3-ntrain{ntrain}"),
        };
        var executor = new ExecutorVerb(a, "reproduce", "figure3");
        if (executor.Handles(Figure3.Tasks(options), options.OutputDirectory, stdout, stderr, cancel) is int submitted) return submitted;
        stderr.WriteLine("loading mnist");
        var set = data.Load(stderr);
        if (a.Has("collect")) return Collected(Figure3.Collect(set, options), options.OutputDirectory, "figure3.png", stdout);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Figure 3 on {set.Description}: AEVB, wake-sleep and Monte Carlo EM, J = {options.LatentDimensions}, {options.HiddenUnits} hidden units, budget {options.Budget:N0} samples per run; Appendix D on {options.Points} points; seed {options.Seed}, {threads} threads; {options.OutputDirectory}"));
        if (executor.Task is int task)
            return TaskRun(Figure3.RunTask(set, options, task, new Lines(stdout), new ProgressBar(stderr), cancel), stdout, stderr);
        var results = Figure3.Run(set, options, new Lines(stdout), new ProgressBar(stderr), cancel);
        ProgressBar.Clear(stderr);
        return Finish(results, options.OutputDirectory, "figure3.png", stdout);
    }

    static int ManifoldsRun(Arguments a, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        long budget = a.Integer("budget", DefaultBudget, 1);
        long seed = a.Integer("seed", 0, 0);
        string dir = a.String("out") ?? Path.Combine("runs", "manifolds");
        var which = a.Has("dataset") ? [a.Choice("dataset", "mnist", "mnist", "frey-face")] : new[] { "mnist", "frey-face" };
        int threads = a.Threads(stderr);
        var presets = which.Select(name => (name == "mnist" ? ManifoldOptions.Mnist : ManifoldOptions.FreyFace) with { Budget = budget, Seed = seed }).ToList();
        var executor = new ExecutorVerb(a, "reproduce", "manifolds");
        if (executor.Handles(Manifolds.Tasks(presets), dir, stdout, stderr, cancel) is int handled) return handled;
        var sets = which.Zip(presets, (name, preset) =>
        {
            stderr.WriteLine($"loading {name}");
            return (new DataChoice(name, null, null, a.String("cache"), a.String("frey-face")).Load(stderr), preset);
        }).ToList();
        if (a.Has("collect")) return Collected(Manifolds.Collect(sets, dir), dir, null, stdout);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Appendix A manifolds: J = 2 AEVB models of {string.Join(" and ", which)}, budget {budget:N0} samples each, seed {seed}, {threads} threads; {dir}"));
        if (executor.Task is int task) return TaskRun(Manifolds.RunTask(sets, task, dir, new Lines(stdout), new ProgressBar(stderr), cancel), stdout, stderr);
        var results = Manifolds.Run(sets, dir, new Lines(stdout), new ProgressBar(stderr), cancel);
        ProgressBar.Clear(stderr);
        bool cancelled = results.Settings["cancelled"] == "True";
        stdout.WriteLine(cancelled ? "interrupted: run the same command again to continue" : $"wrote {Path.Combine(dir, "results.json")} in {results.WallSeconds:F0} s");
        return cancelled ? VaeCommand.Interrupted : VaeCommand.Ok;
    }

    /// <summary>--algorithms a,b: a subset of the experiment's algorithms (all when not given).</summary>
    static IReadOnlyList<string> Algorithms(Arguments a, IReadOnlyList<string> all)
    {
        if (a.String("algorithms") is not { } text) return all;
        var chosen = text.Split(',', StringSplitOptions.TrimEntries);
        foreach (var name in chosen)
            if (!all.Contains(name)) throw new UsageException($"reproduce: --algorithms: unknown algorithm '{name}', expected some of {string.Join(", ", all)}");
        return [.. all.Where(chosen.Contains)];
    }

    /// <summary>One task of a job array: its run's end, or "interrupted" (exit 130, so that the task requeues itself).</summary>
    static int TaskRun((ExperimentRun Run, bool Cancelled) task, TextWriter stdout, TextWriter stderr)
    {
        ProgressBar.Clear(stderr);
        if (task.Cancelled) stdout.WriteLine($"interrupted: {task.Run.Directory} keeps its checkpoint and continues when the task runs again");
        return task.Cancelled ? VaeCommand.Interrupted : VaeCommand.Ok;
    }

    /// <summary>The collector: the table of what the tasks left, and the runs that did not finish (exit 1 when any).</summary>
    static int Collected((ExperimentResults Results, IReadOnlyList<string> Unfinished) collected, string dir, string? figure, TextWriter stdout)
    {
        Table(collected.Results, stdout);
        foreach (var name in collected.Unfinished) stdout.WriteLine($"unfinished: {name}");
        stdout.WriteLine(figure is not null && collected.Results.Runs.Count > 0 ? $"wrote {Path.Combine(dir, "results.json")} and {Path.Combine(dir, figure)}" : $"wrote {Path.Combine(dir, "results.json")}");
        return collected.Unfinished.Count == 0 ? VaeCommand.Ok : VaeCommand.Failure;
    }

    static void Table(ExperimentResults results, TextWriter stdout)
    {
        stdout.WriteLine($"{"J",5} {"algorithm",-11} {"samples",12} {"train",10} {"test",10} step size");
        foreach (var r in results.Runs.Where(r => r.Series.Count > 0))
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.LatentDimensions,5} {r.Algorithm,-11} {r.Series[^1].SamplesSeen,12:N0} {r.Series[^1].TrainBound,10:F2} {r.Series[^1].TestBound,10:F2} {r.StepSize?.ToString(CultureInfo.InvariantCulture) ?? ""}"));
    }

    static int Finish(ExperimentResults results, string dir, string figure, TextWriter stdout)
    {
        bool cancelled = results.Settings.TryGetValue("cancelled", out var c) && c == "True";
        Table(results, stdout);
        stdout.WriteLine(cancelled
            ? $"interrupted: every run keeps its checkpoint; run the same command again to continue ({Path.Combine(dir, "results.json")})"
            : $"wrote {Path.Combine(dir, "results.json")} and {Path.Combine(dir, figure)} in {results.WallSeconds:F0} s");
        return cancelled ? VaeCommand.Interrupted : VaeCommand.Ok;
    }
}

/// <summary>Writes each report as a line, at once, on the reporting thread (Progress&lt;T&gt; would post it later).</summary>
sealed class Lines(TextWriter writer) : IProgress<string>
{
    public void Report(string line) => writer.WriteLine(line);
}
