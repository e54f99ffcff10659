using System.Diagnostics;
using System.Globalization;
using Vae.Data;

namespace Vae.Experiments;

/// <summary>Settings of one learned manifold (Appendix A): a J = 2 AEVB model and its decoded grid.</summary>
public sealed record ManifoldOptions
{
    /// <summary>A short name for files ("mnist", "frey-face").</summary>
    public string Name { get; init; } = "mnist";
    /// <summary>Hidden units of every MLP.</summary>
    public int HiddenUnits { get; init; } = 500;
    /// <summary>The decoder.</summary>
    public DecoderLikelihood Likelihood { get; init; } = DecoderLikelihood.Bernoulli;
    /// <summary>Training samples (AEVB, estimator B, the paper's settings otherwise).</summary>
    public long Budget { get; init; } = 1_000_000;
    /// <summary>Grid points per side.</summary>
    public int Grid { get; init; } = 20;
    /// <summary>Image height in pixels.</summary>
    public int Height { get; init; } = 28;
    /// <summary>Image width in pixels.</summary>
    public int Width { get; init; } = 28;
    /// <summary>The seed.</summary>
    public long Seed { get; init; }

    /// <summary>MNIST: 500 hidden units, a 20 x 20 grid.</summary>
    public static ManifoldOptions Mnist => new();

    /// <summary>Frey Face: 200 hidden units, the sigmoid-mean Gaussian decoder, a 12 x 12 grid of 28 x 20 faces.</summary>
    public static ManifoldOptions FreyFace => new()
    {
        Name = "frey-face", HiddenUnits = 200, Likelihood = DecoderLikelihood.GaussianSigmoidMean, Grid = 12, Width = 20,
    };
}

/// <summary>Appendix A's learned manifolds: for each data set, a model with two latent dimensions trained by AEVB
/// (resumable, skipped when finished), then the decoder's means on a grid placed at the inverse Gaussian CDF of an evenly
/// spaced grid on the unit square, as one mosaic <c>{name}-manifold.png</c>; <c>results.json</c> holds both runs.</summary>
public static class Manifolds
{
    /// <summary>The runs, one per data set in the order given: task i of a job array trains and draws set i.</summary>
    public static IReadOnlyList<ExperimentTask> Tasks(IReadOnlyList<ManifoldOptions> sets)
    {
        ArgumentNullException.ThrowIfNull(sets);
        return [.. sets.Select((o, i) => new ExperimentTask(i, Path.Combine(o.Name, ExperimentTask.RunName(2, TrainingAlgorithm.Aevb)), 2, TrainingAlgorithm.Aevb))];
    }

    /// <summary>Trains (or continues) each model and draws its manifold into <paramref name="directory"/>.</summary>
    public static ExperimentResults Run(IReadOnlyList<(DataSet Data, ManifoldOptions Options)> sets, string directory, IProgress<string>? log = null,
                                        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sets);
        var clock = Stopwatch.StartNew();
        var runs = new List<ExperimentRun>();
        bool cancelled = false;
        foreach (var set in sets)
        {
            var (run, stopped) = RunOne(set.Data, set.Options, directory, log, progress, cancellationToken);
            runs.Add(run);
            if (stopped) { cancelled = true; break; }
        }
        return Save(sets, directory, runs, cancelled, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Trains (or continues) only set <paramref name="task"/> of <paramref name="sets"/> and draws its manifold,
    /// as one task of a job array does; writes no results.json (see <see cref="Collect"/>).</summary>
    public static (ExperimentRun Run, bool Cancelled) RunTask(IReadOnlyList<(DataSet Data, ManifoldOptions Options)> sets, int task, string directory,
                                                            IProgress<string>? log = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sets);
        ExperimentTask.Pick(Tasks([.. sets.Select(s => s.Options)]), task);
        return RunOne(sets[task].Data, sets[task].Options, directory, log, progress, cancellationToken);
    }

    /// <summary>Reads every set's run as the tasks left it and writes results.json; sets short of their budget are named
    /// in the <c>unfinished</c> setting and returned.</summary>
    public static (ExperimentResults Results, IReadOnlyList<string> Unfinished) Collect(IReadOnlyList<(DataSet Data, ManifoldOptions Options)> sets, string directory)
    {
        ArgumentNullException.ThrowIfNull(sets);
        var clock = Stopwatch.StartNew();
        var runs = new List<ExperimentRun>();
        var unfinished = new List<string>();
        foreach (var (_, o) in sets)
        {
            var (found, missing) = ExperimentRuns.Collect(ExperimentTask.Grid([(2, TrainingAlgorithm.Aevb)]), Path.Combine(directory, o.Name), o.Budget);
            runs.AddRange(found);
            unfinished.AddRange(missing.Select(m => $"{o.Name}/{m}"));
        }
        return (Save(sets, directory, runs, false, clock.Elapsed.TotalSeconds, unfinished), unfinished);
    }

    static (ExperimentRun Run, bool Cancelled) RunOne(DataSet data, ManifoldOptions o, string directory, IProgress<string>? log,
                                                     IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        if (o.Height * o.Width != data.Train.Dimension)
            throw new ArgumentException($"{o.Name}: images of {o.Height} x {o.Width} do not match the data's {data.Train.Dimension} values", nameof(o));
        var model = new VaeModelOptions { InputDimension = data.Train.Dimension, HiddenUnits = o.HiddenUnits, LatentDimensions = 2, Likelihood = o.Likelihood };
        var (done, stopped) = ExperimentRuns.RunAll([(2, TrainingAlgorithm.Aevb)], Path.Combine(directory, o.Name),
            (_, algorithm, _) => ExperimentRuns.NewTrainer(algorithm, model, new AevbOptions { Seed = o.Seed }, data.Description),
            data, new TrainingOptions { TotalSamples = o.Budget, EvaluateEvery = 0 }, o.Name, log, progress, cancellationToken);
        if (stopped) return (done[0], true);
        using var trained = VariationalAutoEncoder.Load(Trainer.CheckpointPath(done[0].Directory));
        string png = Path.Combine(directory, $"{o.Name}-manifold.png");
        ImageMosaic.SavePng(png, trained.Manifold(o.Grid), o.Height, o.Width, o.Grid);
        log?.Report($"  wrote {png}");
        return (done[0], false);
    }

    static ExperimentResults Save(IReadOnlyList<(DataSet Data, ManifoldOptions Options)> sets, string directory, IReadOnlyList<ExperimentRun> runs,
                                  bool cancelled, double seconds, IReadOnlyList<string>? unfinished = null)
    {
        var settings = new Dictionary<string, string>
        {
            ["latent"] = "2",
            ["grids"] = string.Join(", ", sets.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Options.Name} {s.Options.Grid} x {s.Options.Grid}"))),
            ["cancelled"] = cancelled.ToString(),
        };
        if (unfinished is { Count: > 0 }) settings["unfinished"] = string.Join(", ", unfinished);
        var results = new ExperimentResults("manifolds", string.Join("; ", sets.Select(s => s.Data.Description)), sets.Max(s => s.Options.Budget),
            sets[0].Options.Seed, settings, "lower bound per datapoint (nats)", runs, seconds, MachineFacts.Current(), ExperimentResults.BuildCommit);
        Directory.CreateDirectory(directory);
        results.Save(Path.Combine(directory, "results.json"));
        return results;
    }
}
