using System.CommandLine;
using System.Globalization;
using Vae.Experiments;

namespace Vae.Cli;

/// <summary><c>vae reproduce figure2</c>: the paper's experiments, resumable, with results.json and figures.</summary>
static class ReproduceVerb
{
    /// <summary>The default budget per run: minutes on a 2-core machine (the paper: about 10⁸).</summary>
    public const long DefaultBudget = 1_000_000;

    static readonly Option<string> Dataset = Opt.Choice("--dataset", "the data set of Figure 2's row, or of the manifolds (default for manifolds: both)", null, "mnist", "frey-face");
    static readonly Option<int[]> Latent = Opt.IntegerList("--latent", "the latent dimensions J, one panel each (default: 3,5,10,20,200 for mnist, 2,5,10,20 for frey-face)", 1, 100_000);
    static readonly Option<long> Budget = Opt.Integer("--budget", "training samples per run (the paper: about 10^8)", DefaultBudget, 1);
    static readonly Option<long> Figure3Budget = Opt.Integer("--budget", "training samples per run (the paper: about 6*10^7)", new Figure3Options().Budget, 1);
    static readonly Option<long?> TrainEval = Opt.OptionalInteger("--train-eval", "the training bound on the first N training images (default: 10000 for mnist, all for frey-face)", 1, int.MaxValue);
    static readonly Option<string> Algorithms = Opt.Text("--algorithms", "a subset of the experiment's algorithms, comma-separated (default: all)", "A,B");
    static readonly Option<string> Out = Opt.Text("--out", "the experiment's directory (default: runs/<experiment>)", "DIR");
    static readonly Option<string> StepSize = Opt.StepSize("Adagrad's step size for every run, or auto: chosen per run as in section 5 (Monte Carlo EM keeps 0.02)");
    static readonly Option<long> NTrain = Opt.Integer("--ntrain", "the first N MNIST training images", 1000, 1, 60_000);
    static readonly Option<long> Evaluations = Opt.Integer("--evaluations", "evaluations per run, evenly spaced up to the budget", new Figure3Options().Evaluations, 1, 1000);
    static readonly Option<long> Points = Opt.Integer("--points", "Appendix D's estimate on the first N training and test images", new Figure3Options().Points, 1, 10_000);
    static readonly Option<long> BurnIn = Opt.Integer("--burn-in", "Appendix D's burn-in transitions", new Figure3Options().Estimator.BurnIn, 0, 1_000_000);
    static readonly Option<long> EndPoints = Opt.Integer("--end-points", "each finished run's end point: Appendix D's estimate on the first N training and test images, in its end-point.json (the paper: 1000; 0: none)", 0, 0, 60_000);
    static readonly Option<string> Figure2EndPoints = Opt.Text("--end-points", "each finished run's end point, in its end-point.json (seed 0, as vae evaluate): the lower bound on the first N training and test images, or on all of them (the records: all); none by default", "N|all");
    static readonly Option<int[]> Ks = Opt.IntegerList("--k", "Burda et al.'s k, one row each (default: 1,5,50)", 1, 100_000);
    static readonly Option<string> Objectives = Opt.Text("--objectives", "vae (the lower bound averaged over k draws), iwae (the importance-weighted bound), or both, comma-separated (default: both)", "vae,iwae");
    static readonly Option<double> Passes = Opt.Number("--passes", "passes over the training set per run (Burda et al.'s schedule: 3280; fewer stop it early)", IwaeTableOptions.TotalPasses, 0, 1e6, minExclusive: true);
    static readonly Option<string> IwaeWeightPrior = Opt.Choice("--weight-prior", "the paper's N(0, I) prior on the weights: off (Burda et al.'s maximum likelihood) or on", "off", "off", "on");
    static readonly Option<string> IwaeEndPoints = Opt.Text("--end-points", "each finished run's end point (test log p(x) by K importance samples, test bound, active units) on the first N test images, or all (the table; default)", "N|all");
    static readonly Option<long> TableK = Opt.Integer("--end-point-k", "the end point's K: importance samples per test image (Burda et al.: 5000; 0: no end point)", 5000, 0, 1_000_000);
    static readonly Option<long> EndPointK = Opt.Integer("--end-point-k", "with --end-points: the importance-weighted estimate with K samples beside it (Figure 2: on the test images), for AEVB and wake-sleep (0: none)", 5000, 0, 1_000_000);

    /// <summary><c>vae reproduce figure2|figure3|manifolds</c>.</summary>
    public static Command Command(TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var figure2 = new Command("figure2", "Figure 2: AEVB against wake-sleep by the lower bound, per latent size, on MNIST or Frey Face");
        foreach (var o in (Option[])[Dataset, Latent, Budget, Algorithms, StepSize, TrainEval, Figure2EndPoints, EndPointK, Common.Seed, Common.Threads, Out, Common.Cache, Common.FreyFace, .. ExecutorVerb.All])
            figure2.Add(o);
        figure2.SetAction(p => Figure2Run(new Arguments(p), stdout, stderr, cancel));
        var figure3 = new Command("figure3", "Figure 3: AEVB, wake-sleep and Monte Carlo EM by Appendix D's marginal likelihood, J = 3, on the first N MNIST images");
        foreach (var o in (Option[])[NTrain, Figure3Budget, Evaluations, Points, BurnIn, EndPoints, EndPointK, StepSize, Common.Seed, Common.Threads, Out, Common.Cache, .. ExecutorVerb.All])
            figure3.Add(o);
        figure3.SetAction(p => Figure3Run(new Arguments(p), stdout, stderr, cancel));
        var manifolds = new Command("manifolds", "Appendix A: the learned 2-D manifolds of MNIST and Frey Face");
        foreach (var o in (Option[])[Dataset, Budget, Common.Seed, Common.Threads, Out, Common.Cache, Common.FreyFace, .. ExecutorVerb.All])
            manifolds.Add(o);
        manifolds.SetAction(p => ManifoldsRun(new Arguments(p), stdout, stderr, cancel));
        var iwae = new Command("iwae-table", "Burda et al. (2015) Table 1, MNIST with one stochastic layer: VAE and IWAE at k = 1, 5, 50 on binarized MNIST, test log p(x) with K = 5000");
        foreach (var o in (Option[])[Ks, Objectives, Passes, IwaeWeightPrior, TrainVerb.AdamBeta1, TrainVerb.AdamVariantChoice, TrainVerb.MinibatchOrderChoice, TrainVerb.InitializationChoice, TrainVerb.OutputBiasChoice, TrainVerb.ScaleHeadChoice, TrainEval, IwaeEndPoints, TableK, Common.Seed, Common.Threads, Out, Common.Cache, .. ExecutorVerb.All])
            iwae.Add(o);
        iwae.SetAction(p => IwaeTableRun(new Arguments(p), stdout, stderr, cancel));
        return new Command("reproduce", "Run one of the paper's experiments, or Burda et al.'s table: resumable runs, results.json and the figure") { figure2, figure3, manifolds, iwae };
    }

    static int Figure2Run(Arguments a, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var data = DataChoice.Named(a.Get(Dataset) ?? "mnist", a.Get(Common.Cache), a.Get(Common.FreyFace));
        var preset = data.Dataset == "mnist" ? Figure2Options.Mnist : Figure2Options.FreyFace;
        int threads = a.Threads(stderr);
        // --end-points N|all, as figure3's --end-points N; --end-point-k sets the importance-weighted estimate's K in both.
        int? endPoints = a.Get(Figure2EndPoints) switch
        {
            null => null,
            "all" => 0,
            var n when int.TryParse(n, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 1 => v,
            var n => throw new UsageException($"reproduce figure2: --end-points: expected a number of images (1 or more) or all, got '{n}'"),
        };
        if (endPoints is null && a.Has(EndPointK)) throw new UsageException("reproduce figure2: --end-point-k: applies with --end-points N|all");
        var options = preset with
        {
            LatentDimensions = a.List(Latent) ?? preset.LatentDimensions,
            Budget = a.Get(Budget),
            Seed = a.Get(Common.Seed),
            TrainEvaluationLimit = a.Get(TrainEval) is long limit ? (int)limit : preset.TrainEvaluationLimit,
            OutputDirectory = a.Get(Out) ?? preset.OutputDirectory,
            Algorithms = ChosenAlgorithms(a, Figure2.Algorithms),
            StepSize = a.Has(StepSize) ? a.StepSize(StepSize) : preset.StepSize,
            EndPoint = endPoints is int points ? Figure2Options.PaperEndPoint((int)a.Get(EndPointK), points) : null,
        };
        var executor = new ExecutorVerb(a, "reproduce", "figure2");
        if (executor.Handles(Figure2.Tasks(options), options.OutputDirectory, stdout, stderr, cancel) is int submitted) return submitted;
        stderr.WriteLine($"loading {data.Dataset}");
        var set = data.Load(stderr);
        if (a.Get(ExecutorVerb.Collect)) return Collected(Figure2.Collect(set, options), options.OutputDirectory, "figure2.png", stdout);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Figure 2 on {set.Description}: {string.Join(" and ", options.Algorithms.Select(x => x.Name()))}, J = {string.Join(", ", options.LatentDimensions)}, {options.HiddenUnits} hidden units, budget {options.Budget:N0} samples per run, step size {options.StepSize?.ToString(CultureInfo.InvariantCulture) ?? "chosen per run (section 5)"}, seed {options.Seed}, {threads} threads; {options.OutputDirectory}"));
        if (executor.Task is int task)
            return TaskRun(Figure2.RunTask(set, options, task, new Lines(stdout), new ProgressBar(stderr), cancel), stdout, stderr);
        var results = Figure2.Run(set, options, new Lines(stdout), new ProgressBar(stderr), cancel);
        ProgressBar.Clear(stderr);
        return Finish(results, options.OutputDirectory, "figure2.png", stdout);
    }

    static int Figure3Run(Arguments a, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        int ntrain = (int)a.Get(NTrain);
        var data = DataChoice.Named("mnist", a.Get(Common.Cache), ntrain: ntrain);
        var defaults = new Figure3Options();
        int threads = a.Threads(stderr);
        var estimator = defaults.Estimator with { BurnIn = (int)a.Get(BurnIn) };
        int endPoints = (int)a.Get(EndPoints);
        if (endPoints == 0 && a.Has(EndPointK)) throw new UsageException("reproduce figure3: --end-point-k: applies with --end-points N");
        var options = defaults with
        {
            Budget = a.Get(Figure3Budget),
            Evaluations = (int)a.Get(Evaluations),
            Points = (int)a.Get(Points),
            Estimator = estimator,
            EndPoint = endPoints > 0 ? Figure3Options.PaperEndPoint(estimator, endPoints, (int)a.Get(EndPointK)) : null,
            Seed = a.Get(Common.Seed),
            StepSize = a.Has(StepSize) ? a.StepSize(StepSize) : defaults.StepSize ?? 0.02,
            OutputDirectory = a.Get(Out) ?? Path.Combine("runs", $"figure3-ntrain{ntrain}"),
        };
        var executor = new ExecutorVerb(a, "reproduce", "figure3");
        if (executor.Handles(Figure3.Tasks(options), options.OutputDirectory, stdout, stderr, cancel) is int submitted) return submitted;
        stderr.WriteLine("loading mnist");
        var set = data.Load(stderr);
        if (a.Get(ExecutorVerb.Collect)) return Collected(Figure3.Collect(set, options), options.OutputDirectory, "figure3.png", stdout);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Figure 3 on {set.Description}: AEVB, wake-sleep and Monte Carlo EM, J = {options.LatentDimensions}, {options.HiddenUnits} hidden units, budget {options.Budget:N0} samples per run; Appendix D on {options.Points} points; seed {options.Seed}, {threads} threads; {options.OutputDirectory}"));
        if (executor.Task is int task)
            return TaskRun(Figure3.RunTask(set, options, task, new Lines(stdout), new ProgressBar(stderr), cancel), stdout, stderr);
        var results = Figure3.Run(set, options, new Lines(stdout), new ProgressBar(stderr), cancel);
        ProgressBar.Clear(stderr);
        return Finish(results, options.OutputDirectory, "figure3.png", stdout);
    }

    static int IwaeTableRun(Arguments a, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var data = DataChoice.Named("binarized-mnist", a.Get(Common.Cache));
        var defaults = new IwaeTableOptions();
        int threads = a.Threads(stderr);
        var objectives = defaults.Objectives;
        if (a.Get(Objectives) is { } text)
            objectives = [.. text.Split(',', StringSplitOptions.TrimEntries).Select(name => name switch
            {
                "vae" => TrainingObjective.Elbo,
                "iwae" => TrainingObjective.ImportanceWeighted,
                _ => throw new UsageException($"reproduce iwae-table: --objectives: unknown objective '{name}', expected vae, iwae or both"),
            }).Distinct()];
        var options = defaults with
        {
            Ks = a.List(Ks) ?? defaults.Ks,
            Objectives = objectives,
            Passes = a.Get(Passes),
            WeightPrior = a.Get(IwaeWeightPrior) == "on",
            AdamBeta1 = a.Get(TrainVerb.AdamBeta1),
            MinibatchOrder = TrainVerb.MinibatchOrderOf(a),
            Initialization = TrainVerb.InitializationOf(a),
            DecoderOutputBias = TrainVerb.OutputBiasOf(a),
            EncoderScaleHead = TrainVerb.ScaleHeadOf(a),
            AdamVariant = TrainVerb.AdamVariantOf(a),
            TrainEvaluationLimit = a.Get(TrainEval) is long limit ? (int)limit : defaults.TrainEvaluationLimit,
            TestK = (int)a.Get(TableK),
            EndPointImages = a.Get(IwaeEndPoints) switch
            {
                null or "all" => 0,
                var n when int.TryParse(n, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 1 => v,
                var n => throw new UsageException($"reproduce iwae-table: --end-points: expected a number of test images (1 or more) or all, got '{n}'"),
            },
            Seed = a.Get(Common.Seed),
            OutputDirectory = a.Get(Out) ?? defaults.OutputDirectory,
        };
        var executor = new ExecutorVerb(a, "reproduce", "iwae-table");
        if (executor.Handles(IwaeTable.Tasks(options), options.OutputDirectory, stdout, stderr, cancel) is int submitted) return submitted;
        stderr.WriteLine("loading binarized-mnist");
        var set = data.Load(stderr);
        if (a.Get(ExecutorVerb.Collect))
        {
            var (collected, unfinished) = IwaeTable.Collect(set, options);
            stdout.Write(IwaeTable.Markdown(collected));
            foreach (var name in unfinished) stdout.WriteLine($"unfinished: {name}");
            stdout.WriteLine($"wrote {Path.Combine(options.OutputDirectory, "results.json")}, table.md{(collected.Runs.Count > 0 ? $" and {IwaeTable.FigureFileName}" : "")}");
            return unfinished.Count == 0 ? VaeCommand.Ok : VaeCommand.Failure;
        }
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Burda et al.'s Table 1 on {set.Description}: {string.Join(", ", IwaeTable.Tasks(options).Select(t => t.Name))}; {options.Passes:0.##} passes ({IwaeTable.Budget(set, options):N0} samples) per run, M = {options.BatchSize}, Adam {options.StepSize} with Burda's schedule; end point K = {options.TestK}; seed {options.Seed}, {threads} threads; {options.OutputDirectory}"));
        if (executor.Task is int task)
            return TaskRun(IwaeTable.RunTask(set, options, task, new Lines(stdout), new ProgressBar(stderr), cancel), stdout, stderr);
        var results = IwaeTable.Run(set, options, new Lines(stdout), new ProgressBar(stderr), cancel);
        ProgressBar.Clear(stderr);
        bool cancelled = results.Settings["cancelled"] == "True";
        stdout.Write(IwaeTable.Markdown(results));
        stdout.WriteLine(cancelled
            ? $"interrupted: every run keeps its checkpoint; run the same command again to continue ({Path.Combine(options.OutputDirectory, "results.json")})"
            : $"wrote {Path.Combine(options.OutputDirectory, "results.json")}, table.md and {IwaeTable.FigureFileName} in {results.WallSeconds:F0} s");
        return cancelled ? VaeCommand.Interrupted : VaeCommand.Ok;
    }

    static int ManifoldsRun(Arguments a, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        long budget = a.Get(Budget);
        long seed = a.Get(Common.Seed);
        string dir = a.Get(Out) ?? Path.Combine("runs", "manifolds");
        var which = a.Get(Dataset) is string one ? [one] : new[] { "mnist", "frey-face" };
        int threads = a.Threads(stderr);
        var presets = which.Select(name => (name == "mnist" ? ManifoldOptions.Mnist : ManifoldOptions.FreyFace) with { Budget = budget, Seed = seed }).ToList();
        var executor = new ExecutorVerb(a, "reproduce", "manifolds");
        if (executor.Handles(Manifolds.Tasks(presets), dir, stdout, stderr, cancel) is int handled) return handled;
        var sets = which.Zip(presets, (name, preset) =>
        {
            stderr.WriteLine($"loading {name}");
            return (DataChoice.Named(name, a.Get(Common.Cache), a.Get(Common.FreyFace)).Load(stderr), preset);
        }).ToList();
        if (a.Get(ExecutorVerb.Collect)) return Collected(Manifolds.Collect(sets, dir), dir, null, stdout);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Appendix A manifolds: J = 2 AEVB models of {string.Join(" and ", which)}, budget {budget:N0} samples each, seed {seed}, {threads} threads; {dir}"));
        if (executor.Task is int task) return TaskRun(Manifolds.RunTask(sets, task, dir, new Lines(stdout), new ProgressBar(stderr), cancel), stdout, stderr);
        var results = Manifolds.Run(sets, dir, new Lines(stdout), new ProgressBar(stderr), cancel);
        ProgressBar.Clear(stderr);
        bool cancelled = results.Settings["cancelled"] == "True";
        stdout.WriteLine(cancelled ? "interrupted: run the same command again to continue" : $"wrote {Path.Combine(dir, "results.json")} in {results.WallSeconds:F0} s");
        return cancelled ? VaeCommand.Interrupted : VaeCommand.Ok;
    }

    /// <summary>--algorithms a,b: a subset of the experiment's algorithms (all when not given).</summary>
    static IReadOnlyList<TrainingAlgorithm> ChosenAlgorithms(Arguments a, IReadOnlyList<TrainingAlgorithm> all)
    {
        if (a.Get(Algorithms) is not { } text) return all;
        var chosen = new List<TrainingAlgorithm>();
        foreach (var name in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!TrainingAlgorithms.TryParse(name, out var algorithm) || !all.Contains(algorithm))
                throw new UsageException($"reproduce: --algorithms: unknown algorithm '{name}', expected some of {string.Join(", ", all.Select(x => x.Name()))}");
            chosen.Add(algorithm);
        }
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
