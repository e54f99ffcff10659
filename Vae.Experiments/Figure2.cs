using System.Diagnostics;
using System.Globalization;
using Vae.Data;

namespace Vae.Experiments;

/// <summary>Settings of <see cref="Figure2"/>: the paper's Figure 2 (AEVB against wake-sleep, lower bound per
/// datapoint against training samples evaluated, one panel per latent size).</summary>
public sealed record Figure2Options
{
    /// <summary>The data set's name in titles and progress lines ("MNIST", "Frey Face"); results.json keeps it as <c>label</c>.</summary>
    public string DatasetLabel { get; init; } = "MNIST";
    /// <summary>The latent sizes, one panel each (the paper: 3, 5, 10, 20, 200 for MNIST; 2, 5, 10, 20 for Frey Face).</summary>
    public IReadOnlyList<int> LatentDimensions { get; init; } = [3, 5, 10, 20, 200];
    /// <summary>Hidden units of every MLP (the paper: 500 MNIST, 200 Frey Face).</summary>
    public int HiddenUnits { get; init; } = 500;
    /// <summary>The decoder (Bernoulli for MNIST, the sigmoid-mean Gaussian for Frey Face).</summary>
    public DecoderLikelihood Likelihood { get; init; } = DecoderLikelihood.Bernoulli;
    /// <summary>Training samples per run (the paper: about 10⁸).</summary>
    public long Budget { get; init; } = 1_000_000;
    /// <summary>The first evaluation point (or a tenth of a smaller budget); the others are log-spaced up to the budget, four per decade.</summary>
    public long FirstEvaluation { get; init; } = 100_000;
    /// <summary>Evaluate the training bound on at most this many training images (all when null).</summary>
    public int? TrainEvaluationLimit { get; init; } = 10_000;
    /// <summary>Adagrad's global step size; null chooses it per run as section 5 does (see <see cref="StepSizeSelection"/>).</summary>
    public double? StepSize { get; init; } = 0.02;
    /// <summary>Training samples of each step-size trial when <see cref="StepSize"/> is null.</summary>
    public long StepSizeTrialSamples { get; init; } = StepSizeSelection.DefaultTrialSamples;
    /// <summary>The algorithms to run, a subset of <see cref="Figure2.Algorithms"/> (all by default).</summary>
    public IReadOnlyList<TrainingAlgorithm> Algorithms { get; init; } = Figure2.Algorithms;
    /// <summary>Estimates of each finished run's model, kept in its <c>end-point.json</c> (RESULTS.md's tables: see
    /// <see cref="PaperEndPoint"/>). None by default.</summary>
    public EndPointOptions? EndPoint { get; init; }
    /// <summary>The seed of every run.</summary>
    public long Seed { get; init; }
    /// <summary>The directory holding one run directory per (J, algorithm), results.json and the figure.</summary>
    public string OutputDirectory { get; init; } = Path.Combine("runs", "figure2-mnist");

    /// <summary>The end points beside the paper's: the lower bound on the training and test images, and the
    /// importance-weighted estimate of log p(x) with <paramref name="importanceSamples"/> draws (Burda et al.'s K = 5000;
    /// 0: none) on the test images; on the first <paramref name="points"/> of each (0: all, as the records).</summary>
    public static EndPointOptions PaperEndPoint(int importanceSamples = 5000, int points = 0) => new()
    {
        Points = points,
        Estimators = [new MarginalLikelihoodOptions { Method = MarginalLikelihoodMethod.Elbo }],
        TestEstimators = importanceSamples > 0
            ? [new MarginalLikelihoodOptions { Method = MarginalLikelihoodMethod.ImportanceWeighted, ImportanceSamples = importanceSamples }]
            : [],
    };

    /// <summary>The paper's MNIST panels and model.</summary>
    public static Figure2Options Mnist => new();

    /// <summary>The paper's Frey Face panels and model (200 hidden units, sigmoid-mean Gaussian decoder).</summary>
    public static Figure2Options FreyFace => new()
    {
        DatasetLabel = "Frey Face", LatentDimensions = [2, 5, 10, 20], HiddenUnits = 200, Likelihood = DecoderLikelihood.GaussianSigmoidMean,
        OutputDirectory = Path.Combine("runs", "figure2-frey-face"), TrainEvaluationLimit = null,
    };
}

/// <summary>The paper's Figure 2: for each latent size, AEVB (estimator B) and wake-sleep with the same networks,
/// trained on the same data and budget; the train and test lower bounds per datapoint at log-spaced points. Every run
/// is resumable (a second call continues unfinished runs and skips finished ones); the results are written to
/// <c>results.json</c> and drawn to <c>figure2.png</c> in the output directory.</summary>
public static class Figure2
{
    /// <summary>The algorithms compared, in drawing order.</summary>
    public static IReadOnlyList<TrainingAlgorithm> Algorithms { get; } = [TrainingAlgorithm.Aevb, TrainingAlgorithm.WakeSleep];

    /// <summary>The runs of the experiment in order (latent size, then algorithm): task i of a job array trains run i.</summary>
    public static IReadOnlyList<ExperimentTask> Tasks(Figure2Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return ExperimentTask.Grid(options.LatentDimensions.SelectMany(j => Algorithms.Where(options.Algorithms.Contains).Select(a => (j, a))));
    }

    /// <summary>Runs (or continues) every run and draws the figure. Cancellation stops after the current step, with
    /// every run's checkpoint written; the results then hold what was done, and no figure is drawn.</summary>
    public static ExperimentResults Run(DataSet data, Figure2Options options, IProgress<string>? log = null,
                                        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        Validate(data, options);
        var clock = Stopwatch.StartNew();
        var (runs, cancelled) = Train(data, options, Tasks(options), log, progress, cancellationToken);
        // Runs of the algorithms not asked for this time, as earlier invocations left them, complete the figure.
        var others = ExperimentRuns.ReadExisting(options.LatentDimensions.SelectMany(j => Algorithms.Where(a => !options.Algorithms.Contains(a)).Select(a => (j, a))),
                                                 options.OutputDirectory);
        return Save(data, options, [.. runs.Concat(others)], cancelled, [], clock.Elapsed.TotalSeconds);
    }

    /// <summary>Runs (or continues) only run <paramref name="task"/> of <see cref="Tasks"/>, as one task of a job array
    /// does; writes no results (the collector does, see <see cref="Collect"/>).</summary>
    public static (ExperimentRun Run, bool Cancelled) RunTask(DataSet data, Figure2Options options, int task, IProgress<string>? log = null,
                                                            IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        Validate(data, options);
        var (runs, cancelled) = Train(data, options, [ExperimentTask.Pick(Tasks(options), task)], log, progress, cancellationToken);
        return (runs[0], cancelled);
    }

    /// <summary>Reads every run of <see cref="Tasks"/> as the tasks left it, without training, and writes results.json and
    /// the figure of what there is; runs short of the budget (or absent) are named in the results' <c>unfinished</c>
    /// setting and returned.</summary>
    public static (ExperimentResults Results, IReadOnlyList<string> Unfinished) Collect(DataSet data, Figure2Options options)
    {
        Validate(data, options);
        var clock = Stopwatch.StartNew();
        var (runs, unfinished) = ExperimentRuns.Collect(Tasks(options), options.OutputDirectory, options.Budget);
        return (Save(data, options, runs, false, unfinished, clock.Elapsed.TotalSeconds), unfinished);
    }

    static void Validate(DataSet data, Figure2Options options)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        if (options.LatentDimensions.Count == 0 || options.LatentDimensions.Any(j => j < 1))
            throw new ArgumentOutOfRangeException(nameof(options), "latent dimensions: expected one or more sizes of at least 1");
        if (options.Budget < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Budget, "budget: expected at least 1 training sample");
        if (options.Algorithms.Count == 0 || options.Algorithms.Any(a => !Algorithms.Contains(a)))
            throw new ArgumentOutOfRangeException(nameof(options), $"algorithms: expected one or more of {string.Join(", ", Algorithms.Select(a => a.Name()))}");
        options.EndPoint?.Validate(nameof(options));
    }

    static IReadOnlyList<long> Points(Figure2Options options) =>
        ExperimentRuns.LogSpaced(Math.Min(options.FirstEvaluation, Math.Max(1, options.Budget / 10)), options.Budget);

    static (IReadOnlyList<ExperimentRun> Runs, bool Cancelled) Train(DataSet data, Figure2Options options, IReadOnlyList<ExperimentTask> tasks,
        IProgress<string>? log, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken) =>
        ExperimentRuns.RunAll(
            tasks.Select(t => (t.LatentDimensions, t.Algorithm!.Value)), options.OutputDirectory,
            (j, algorithm, dir) => ExperimentRuns.NewTrainer(algorithm,
                new VaeModelOptions { InputDimension = data.Train.Dimension, HiddenUnits = options.HiddenUnits, LatentDimensions = j, Likelihood = options.Likelihood },
                new AevbOptions { StepSize = options.StepSize ?? 0.02, Seed = options.Seed }, data.Description,
                options.StepSize is null ? new StepSizeSearch(data.Train, options.StepSizeTrialSamples, options.TrainEvaluationLimit ?? data.Train.Count, dir, cancellationToken) : null),
            data, new TrainingOptions { TotalSamples = options.Budget, EvaluateAt = Points(options), TrainEvaluationLimit = options.TrainEvaluationLimit },
            options.DatasetLabel, log, progress, cancellationToken, options.EndPoint);

    /// <summary>Writes results.json and (unless cancelled) the figure of <paramref name="runs"/>, in the figure's order.</summary>
    static ExperimentResults Save(DataSet data, Figure2Options options, IReadOnlyList<ExperimentRun> runs, bool cancelled, IReadOnlyList<string> unfinished, double seconds)
    {
        runs = [.. runs.OrderBy(r => options.LatentDimensions.ToList().IndexOf(r.LatentDimensions)).ThenBy(r => Algorithms.Select(a => a.Name()).ToList().IndexOf(r.Algorithm))];
        var settings = new Dictionary<string, string>
        {
            ["label"] = options.DatasetLabel,
            ["hidden_units"] = options.HiddenUnits.ToString(CultureInfo.InvariantCulture),
            ["likelihood"] = options.Likelihood.ToString(),
            ["estimator"] = "B (AEVB)", ["batch"] = "100", ["step_size"] = options.StepSize?.ToString(CultureInfo.InvariantCulture) ?? $"chosen per run from {{{string.Join(", ", StepSizeSelection.PaperCandidates.Select(c => c.ToString(CultureInfo.InvariantCulture)))}}} by the training bound after {options.StepSizeTrialSamples} samples (section 5)",
            ["train_evaluation"] = options.TrainEvaluationLimit is int n ? $"first {n} training images" : "all training images",
            ["evaluation_points"] = string.Join(" ", Points(options)),
            ["data"] = options.Likelihood == DecoderLikelihood.Bernoulli ? "grey levels" : "continuous values",
            ["cancelled"] = cancelled.ToString(),
        };
        if (unfinished.Count > 0) settings["unfinished"] = string.Join(", ", unfinished);
        var results = new ExperimentResults("figure2", data.Description, options.Budget, options.Seed, settings,
            "lower bound per datapoint (nats)", runs, seconds, MachineFacts.Current(), ExperimentResults.BuildCommit);
        Directory.CreateDirectory(options.OutputDirectory);
        results.Save(Path.Combine(options.OutputDirectory, "results.json"));
        if (!cancelled && runs.Count > 0) LearningCurvePlot.Save(results, Path.Combine(options.OutputDirectory, "figure2.png"));
        return results;
    }
}
