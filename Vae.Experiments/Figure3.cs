using System.Diagnostics;
using System.Globalization;
using Vae.Data;

namespace Vae.Experiments;

/// <summary>Settings of <see cref="Figure3"/>: the paper's Figure 3 (AEVB, wake-sleep and Monte Carlo EM; the marginal
/// log-likelihood by Appendix D's estimator against training samples evaluated).</summary>
public sealed record Figure3Options
{
    /// <summary>Latent dimensions (the paper: 3; Appendix D's estimator is reliable below 5).</summary>
    public int LatentDimensions { get; init; } = 3;
    /// <summary>Hidden units of every MLP (the paper: 100).</summary>
    public int HiddenUnits { get; init; } = 100;
    /// <summary>Training samples per run (the paper: up to 6·10⁷).</summary>
    public long Budget { get; init; } = 2_000_000;
    /// <summary>Evaluations per run, evenly spaced up to the budget.</summary>
    public int Evaluations { get; init; } = 4;
    /// <summary>Appendix D's estimate is made on this many of the first training and test images (the paper: 1000).</summary>
    public int Points { get; init; } = 100;
    /// <summary>The estimator's settings (the paper: 50 posterior samples, 4 leapfrog steps; burn-in 1000).</summary>
    public MarginalLikelihoodOptions Estimator { get; init; } = new() { Method = MarginalLikelihoodMethod.HmcMarginal };
    /// <summary>Estimates of each finished run's model on the first <see cref="EndPointOptions.Points"/> training and test
    /// images, kept in its <c>end-point.json</c> (the paper: Appendix D's on 1000; see <see cref="PaperEndPoint"/>). None
    /// by default.</summary>
    public EndPointOptions? EndPoint { get; init; }
    /// <summary>Adagrad's global step size; null chooses it per run as section 5 does (<see cref="StepSizeSelection"/>) for
    /// AEVB and wake-sleep, and keeps 0.02 for Monte Carlo EM, which has no training bound to compare.</summary>
    public double? StepSize { get; init; } = 0.02;
    /// <summary>Training samples of each step-size trial when <see cref="StepSize"/> is null.</summary>
    public long StepSizeTrialSamples { get; init; } = StepSizeSelection.DefaultTrialSamples;
    /// <summary>The seed of every run.</summary>
    public long Seed { get; init; }
    /// <summary>The directory holding one run directory per algorithm, results.json and the figure.</summary>
    public string OutputDirectory { get; init; } = Path.Combine("runs", "figure3-ntrain1000");

    /// <summary>The end points of the paper's panels: <paramref name="estimator"/> (Appendix D's) and the importance-weighted
    /// estimate with <paramref name="importanceSamples"/> draws (none when 0; Monte Carlo EM has no encoder for it) on
    /// the first <paramref name="points"/> training and test images.</summary>
    public static EndPointOptions PaperEndPoint(MarginalLikelihoodOptions estimator, int points = 1000, int importanceSamples = 5000) => new()
    {
        Points = points,
        Estimators = importanceSamples > 0
            ? [estimator, new MarginalLikelihoodOptions { Method = MarginalLikelihoodMethod.ImportanceWeighted, ImportanceSamples = importanceSamples, Seed = estimator.Seed }]
            : [estimator],
    };
}

/// <summary>The paper's Figure 3: AEVB, wake-sleep and Monte Carlo EM with the same decoder, trained on the same
/// (small) training set for the same number of training samples, evaluated by Appendix D's marginal-likelihood
/// estimator on the first training and test images. Runs resume and finished runs are skipped, as in
/// <see cref="Figure2"/>; writes <c>results.json</c> and <c>figure3.png</c>.</summary>
public static class Figure3
{
    /// <summary>The algorithms compared, in drawing order.</summary>
    public static IReadOnlyList<TrainingAlgorithm> Algorithms { get; } = [TrainingAlgorithm.Aevb, TrainingAlgorithm.WakeSleep, TrainingAlgorithm.MonteCarloEm];

    /// <summary>The runs of the experiment in order: task i of a job array trains run i.</summary>
    public static IReadOnlyList<ExperimentTask> Tasks(Figure3Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return ExperimentTask.Grid(Algorithms.Select(a => (options.LatentDimensions, a)));
    }

    /// <summary>Runs (or continues) the three runs on <paramref name="data"/> (its training set already cut to
    /// N_train) and draws the figure, unless cancelled.</summary>
    public static ExperimentResults Run(DataSet data, Figure3Options options, IProgress<string>? log = null,
                                        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        Validate(data, options);
        var clock = Stopwatch.StartNew();
        var (runs, cancelled) = Train(data, options, Tasks(options), log, progress, cancellationToken);
        return Save(data, options, runs, cancelled, [], clock.Elapsed.TotalSeconds);
    }

    /// <summary>Runs (or continues) only run <paramref name="task"/> of <see cref="Tasks"/>, as one task of a job array
    /// does; writes no results (see <see cref="Collect"/>).</summary>
    public static (ExperimentRun Run, bool Cancelled) RunTask(DataSet data, Figure3Options options, int task, IProgress<string>? log = null,
                                                            IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        Validate(data, options);
        var (runs, cancelled) = Train(data, options, [ExperimentTask.Pick(Tasks(options), task)], log, progress, cancellationToken);
        return (runs[0], cancelled);
    }

    /// <summary>Reads every run as the tasks left it, without training, and writes results.json and the figure of what
    /// there is; runs short of the budget are named in the <c>unfinished</c> setting and returned.</summary>
    public static (ExperimentResults Results, IReadOnlyList<string> Unfinished) Collect(DataSet data, Figure3Options options)
    {
        Validate(data, options);
        var clock = Stopwatch.StartNew();
        var (runs, unfinished) = ExperimentRuns.Collect(Tasks(options), options.OutputDirectory, options.Budget);
        return (Save(data, options, runs, false, unfinished, clock.Elapsed.TotalSeconds), unfinished);
    }

    static void Validate(DataSet data, Figure3Options options)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Budget < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Budget, "budget: expected at least 1 training sample");
        if (options.Evaluations < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Evaluations, "evaluations: expected at least 1");
        if (options.Points < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Points, "points: expected at least 1");
        _ = new MarginalLikelihoodEstimator(options.Estimator); // validates
        options.EndPoint?.Validate(nameof(options));
    }

    static long[] Points(Figure3Options options) => [.. Enumerable.Range(1, options.Evaluations).Select(k => options.Budget * k / options.Evaluations)];

    static (IReadOnlyList<ExperimentRun> Runs, bool Cancelled) Train(DataSet data, Figure3Options options, IReadOnlyList<ExperimentTask> tasks,
        IProgress<string>? log, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var model = new VaeModelOptions { InputDimension = data.Train.Dimension, HiddenUnits = options.HiddenUnits, LatentDimensions = options.LatentDimensions };
        return ExperimentRuns.RunAll(
            tasks.Select(t => (t.LatentDimensions, t.Algorithm!.Value)), options.OutputDirectory,
            (_, algorithm, dir) => ExperimentRuns.NewTrainer(algorithm, model, new AevbOptions { StepSize = options.StepSize ?? 0.02, Seed = options.Seed }, data.Description,
                options.StepSize is null && algorithm != TrainingAlgorithm.MonteCarloEm ? new StepSizeSearch(data.Train, options.StepSizeTrialSamples, data.Train.Count, dir, cancellationToken) : null),
            data, new TrainingOptions { TotalSamples = options.Budget, EvaluateAt = Points(options), Estimator = options.Estimator, MarginalLikelihoodPoints = options.Points },
            "MNIST", log, progress, cancellationToken, options.EndPoint);
    }

    /// <summary>Writes results.json and (unless cancelled) the figure of <paramref name="runs"/>.</summary>
    static ExperimentResults Save(DataSet data, Figure3Options options, IReadOnlyList<ExperimentRun> runs, bool cancelled, IReadOnlyList<string> unfinished, double seconds)
    {
        var e = options.Estimator;
        var settings = new Dictionary<string, string>
        {
            ["train_images"] = data.Train.Count.ToString(CultureInfo.InvariantCulture),
            ["latent"] = options.LatentDimensions.ToString(CultureInfo.InvariantCulture),
            ["hidden_units"] = options.HiddenUnits.ToString(CultureInfo.InvariantCulture),
            ["step_size"] = options.StepSize?.ToString(CultureInfo.InvariantCulture) ?? $"chosen per run from {{0.01, 0.02, 0.1}} by the training bound after {options.StepSizeTrialSamples} samples (section 5); 0.02 for Monte Carlo EM",
            ["estimator"] = string.Create(CultureInfo.InvariantCulture,
                $"Appendix D on the first {options.Points} training and test images: {e.PosteriorSamples} posterior samples, {e.LeapfrogSteps} leapfrog steps, burn-in {e.BurnIn}"),
            ["evaluation_points"] = string.Join(" ", Points(options)),
            ["data"] = "grey levels",
            ["mcem_samples"] = "an EM iteration counts 5 N samples: the datapoints of its M-step's five full-batch weight updates (E-step datapoints: samples / 5)",
            ["cancelled"] = cancelled.ToString(),
        };
        if (unfinished.Count > 0) settings["unfinished"] = string.Join(", ", unfinished);
        var results = new ExperimentResults("figure3", data.Description, options.Budget, options.Seed, settings,
            "marginal log-likelihood (nats)", runs, seconds, MachineFacts.Current(), ExperimentResults.BuildCommit);
        Directory.CreateDirectory(options.OutputDirectory);
        results.Save(Path.Combine(options.OutputDirectory, "results.json"));
        if (!cancelled && runs.Count > 0)
            LearningCurvePlot.Save(results, Path.Combine(options.OutputDirectory, "figure3.png"));
        return results;
    }
}
