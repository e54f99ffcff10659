using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Vae.Data;

namespace Vae.Experiments;

/// <summary>One training run of an experiment and its learning curve.</summary>
/// <param name="Algorithm">The algorithm as results.json names it: "aevb", "wake-sleep" or "mcem" (<see cref="TrainingAlgorithms.Name"/>).</param>
/// <param name="LatentDimensions">J.</param>
/// <param name="Directory">The run directory (checkpoint, metrics.csv, options.txt).</param>
/// <param name="Skipped">Whether the run had already reached its budget, so this invocation did not train it.</param>
/// <param name="Series">The evaluations over training, in order of samples.</param>
/// <param name="StepSize">Adagrad's global step size the run trained with (from its options.txt), when known.</param>
/// <param name="StepSizeTrials">Section 5's trials that chose <paramref name="StepSize"/>, when it was chosen so.</param>
/// <param name="EndPoint">Estimates of the finished model (e.g. the importance-weighted log-likelihood with K = 5000), as
/// <c>vae evaluate --json</c> writes them to the run directory's <c>end-point.json</c>, when there is one.</param>
/// <param name="SamplesPerIteration">Monte Carlo EM: the training samples one EM iteration counts (5 N, its M-step's five
/// full-batch updates of N datapoints), so that each evaluation's EM iterations are its samples / this, exactly; null
/// for the other algorithms.</param>
public sealed record ExperimentRun(string Algorithm, int LatentDimensions, string Directory, bool Skipped, IReadOnlyList<EvaluationResult> Series,
                                   double? StepSize = null, IReadOnlyList<StepSizeTrial>? StepSizeTrials = null,
                                   IReadOnlyDictionary<string, JsonElement>? EndPoint = null, long? SamplesPerIteration = null)
{
    /// <summary>The objective the run ascends when an experiment varies it (the IWAE table: "vae" for the lower bound
    /// averaged over <see cref="K"/> draws, "iwae" for the importance-weighted bound); null otherwise.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Objective { get; init; }
    /// <summary>Samples of the noise per datapoint of <see cref="Objective"/> (Burda et al.'s k); null otherwise.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? K { get; init; }
}

/// <summary>One run of an experiment, as a task of a job array: task <paramref name="Index"/> trains the run directory
/// <paramref name="Name"/> under the experiment directory; a run of a figure's grid also names its
/// <paramref name="LatentDimensions"/> and <paramref name="Algorithm"/> (a seed sweep's runs are named by seed).</summary>
public sealed record ExperimentTask(int Index, string Name, int LatentDimensions = 0, TrainingAlgorithm? Algorithm = null)
{
    /// <summary>The runs numbered in the given order.</summary>
    public static IReadOnlyList<ExperimentTask> Grid(IEnumerable<(int Latent, TrainingAlgorithm Algorithm)> runs) =>
        [.. runs.Select((r, i) => new ExperimentTask(i, RunName(r.Latent, r.Algorithm), r.Latent, r.Algorithm))];

    /// <summary>A figure's run directory name: <c>j{J}-{algorithm}</c>.</summary>
    public static string RunName(int latent, TrainingAlgorithm algorithm) => string.Create(CultureInfo.InvariantCulture, $"j{latent}-{algorithm.Name()}");

    /// <summary>Task <paramref name="index"/> of <paramref name="tasks"/>, or an error naming the valid range.</summary>
    public static ExperimentTask Pick(IReadOnlyList<ExperimentTask> tasks, int index) =>
        index >= 0 && index < tasks.Count ? tasks[index]
            : throw new ArgumentOutOfRangeException(nameof(index), index, $"task: expected 0 to {tasks.Count - 1} (the experiment has {tasks.Count} runs)");
}

/// <summary>One run an experiment brings to its budget: its directory's <paramref name="Name"/> under the experiment's,
/// the words naming it in progress lines, its algorithm and J, and how to create it in its directory.</summary>
internal sealed record PlannedRun(string Name, string Label, TrainingAlgorithm Algorithm, int LatentDimensions, Func<string, Trainer> Create);

/// <summary>Section 5's step-size choice for a new experiment run: the trials train on <paramref name="Train"/> for
/// <paramref name="TrialSamples"/> samples each, compare training bounds on its first <paramref name="EvaluationPoints"/>
/// images, and are recorded in <c>step-size.json</c> of the run directory <paramref name="Directory"/>.</summary>
public sealed record StepSizeSearch(ImageData Train, long TrialSamples, int EvaluationPoints, string Directory, CancellationToken CancellationToken);

/// <summary>What an experiment produced: its settings, every run's curve, the time it took and the machine.</summary>
/// <param name="Experiment">"figure2" or "figure3".</param>
/// <param name="Dataset">The data set's description.</param>
/// <param name="Budget">Training samples per run.</param>
/// <param name="Seed">The seed of every run.</param>
/// <param name="Settings">The other settings, as text.</param>
/// <param name="Measure">What the curves measure (e.g. "lower bound per datapoint (nats)").</param>
/// <param name="Runs">The runs.</param>
/// <param name="WallSeconds">Time this invocation took (runs already finished are not retrained).</param>
/// <param name="Machine">The machine.</param>
/// <param name="Commit">The source commit of the program that wrote the results, when the build recorded it.</param>
public sealed record ExperimentResults(string Experiment, string Dataset, long Budget, long Seed, IReadOnlyDictionary<string, string> Settings,
                                       string Measure, IReadOnlyList<ExperimentRun> Runs, double WallSeconds, MachineFacts Machine,
                                       string? Commit = null)
{
    /// <summary>The source commit the Vae library was built from (<see cref="BuildInfo.Commit"/>), or null.</summary>
    public static string? BuildCommit => BuildInfo.Commit;

    // Reading insists on every field without a default and refuses nulls where the types have none.
    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        RespectRequiredConstructorParameters = true, RespectNullableAnnotations = true,
    };

    /// <summary>The results as JSON (snake_case fields; a missing test value is "NaN").</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads results written by <see cref="Save"/>; JSON of another shape is an <see cref="InvalidDataException"/>.</summary>
    public static ExperimentResults FromJson(string json) => Parse(json, "results");

    /// <summary>Reads the results.json at <paramref name="path"/>; a missing file or one that is not an experiment's
    /// results is an error naming the file (<see cref="FileNotFoundException"/>, <see cref="InvalidDataException"/>).</summary>
    public static ExperimentResults Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path)) throw new InvalidDataException($"{path}: is a directory; expected an experiment's results.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file", path);
        return Parse(File.ReadAllText(path), path);
    }

    static ExperimentResults Parse(string json, string source)
    {
        const string Expected = "not an experiment's results.json";
        ExperimentResults? results;
        try { results = JsonSerializer.Deserialize<ExperimentResults>(json, Json); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: {Expected} ({e.Message})", e); }
        if (results is null) throw new InvalidDataException($"{source}: {Expected} (expected a JSON object, found null)");
        // Nullable annotations are not enforced on list elements: a null run or evaluation is refused here.
        if (results.Runs.Any(r => r is null || r.Series.Any(e => e is null)))
            throw new InvalidDataException($"{source}: {Expected} (a run or an evaluation of 'runs' is null)");
        return results;
    }

    /// <summary>Writes the JSON to <paramref name="path"/> atomically.</summary>
    public void Save(string path) => Vae.Core.Files.writeAtomically(path, System.Text.Encoding.UTF8.GetBytes(ToJson()));
}

/// <summary>Training runs that an experiment can repeat: each lives in its own run directory, a finished run is
/// skipped, and an unfinished one (interrupted, or with a smaller budget) continues from its checkpoint.</summary>
public static class ExperimentRuns
{
    /// <summary>Brings the run in <paramref name="directory"/> to <paramref name="options"/>' total samples: creates it
    /// with <paramref name="create"/> when the directory holds no checkpoint, resumes it otherwise, and does nothing when
    /// it has reached the budget. A directory holding only a run's record (metrics.csv and options.txt, as committed
    /// with the results) that reaches the budget is finished too; one that does not is refused, as it cannot continue.
    /// Returns whether it was skipped and the run's whole series from its metrics.csv.</summary>
    public static (bool Skipped, IReadOnlyList<EvaluationResult> Series, bool Cancelled) Ensure(
        string directory, Func<Trainer> create, ImageData train, TrainingOptions options, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        string checkpoint = Trainer.CheckpointPath(directory);
        string metrics = Path.Combine(directory, "metrics.csv");
        if (!File.Exists(checkpoint) && Vae.RunRecord.ReadEvaluations(metrics) is { Count: > 0 } record)
            return record[^1].SamplesSeen >= options.TotalSamples ? (true, record, false)
                : throw new InvalidDataException($"{directory}: holds a run's record to {record[^1].SamplesSeen} samples but no checkpoint, so it cannot continue to {options.TotalSamples}; remove the directory to train the run again");
        Trainer trainer;
        try { trainer = File.Exists(checkpoint) ? Trainer.Resume(checkpoint) : create(); }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return (false, Vae.RunRecord.ReadEvaluations(metrics), true); // cancelled during section 5's step-size trials: nothing to keep
        }
        using var owned = trainer;
        bool skipped = trainer.SamplesSeen >= options.TotalSamples && File.Exists(checkpoint);
        bool cancelled = false;
        if (!skipped)
        {
            // Estimates of an earlier end point no longer describe the model once it trains further.
            if (File.Exists(Path.Combine(directory, EndPointFileName))) File.Delete(Path.Combine(directory, EndPointFileName));
            var hold = EvaluationHold.For(directory, cancellationToken); // a test hook (VAE_HOLD_AFTER_EVALUATION)
            var evaluated = hold is null ? options.Evaluated : options.Evaluated + hold;
            cancelled = trainer.Fit(train, options with { RunDirectory = directory, Evaluated = evaluated }, progress, cancellationToken).Cancelled;
        }
        return (skipped, Vae.RunRecord.ReadEvaluations(metrics), cancelled);
    }

    /// <summary>A new trainer of the algorithm. With a
    /// <paramref name="stepSize"/> search, the step size of <paramref name="options"/> is replaced by section 5's choice,
    /// and the trials are written to <c>step-size.json</c> in the search's directory.</summary>
    public static Trainer NewTrainer(TrainingAlgorithm algorithm, VaeModelOptions model, AevbOptions options, string dataset, StepSizeSearch? stepSize = null)
    {
        if (stepSize is null) return Create(algorithm, model, options, dataset);
        var choice = StepSizeSelection.Choose(o => Create(algorithm, model, o, dataset), options, stepSize.Train, trialSamples: stepSize.TrialSamples,
                                              evaluationPoints: stepSize.EvaluationPoints, cancellationToken: stepSize.CancellationToken);
        Directory.CreateDirectory(stepSize.Directory);
        Vae.Core.Files.writeAtomically(Path.Combine(stepSize.Directory, StepSizeFileName),
            System.Text.Encoding.UTF8.GetBytes(JsonSerializer.Serialize(choice.Trials, TrialsJson)));
        return Create(algorithm, model, choice.Options, dataset);
    }

    internal static Trainer Create(TrainingAlgorithm algorithm, VaeModelOptions model, AevbOptions options, string dataset) => algorithm switch
    {
        TrainingAlgorithm.Aevb => new AevbTrainer(model, options, dataset),
        TrainingAlgorithm.WakeSleep => new WakeSleepTrainer(model, options, dataset),
        TrainingAlgorithm.MonteCarloEm => new McemTrainer(model, options, dataset),
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, "expected Aevb, WakeSleep or MonteCarloEm"),
    };

    /// <summary>The file of a run directory that records section 5's step-size trials.</summary>
    public const string StepSizeFileName = "step-size.json";

    static readonly JsonSerializerOptions TrialsJson = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Brings every (latent size, algorithm) run to the budget in <paramref name="options"/>, in order, each in
    /// <c>j{J}-{algorithm}</c> under <paramref name="directory"/> (see <see cref="Ensure"/>), reporting each to
    /// <paramref name="log"/>; a run at its budget then gets its <paramref name="endPoint"/> estimates, once
    /// (<see cref="EndPoint.Ensure"/>). Stops after a cancelled run. Returns the runs and whether it was cancelled.</summary>
    public static (IReadOnlyList<ExperimentRun> Runs, bool Cancelled) RunAll(
        IEnumerable<(int Latent, TrainingAlgorithm Algorithm)> runs, string directory, Func<int, TrainingAlgorithm, string, Trainer> create, DataSet data,
        TrainingOptions options, string label, IProgress<string>? log, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken,
        EndPointOptions? endPoint = null) =>
        RunPlanned(runs.Select(r => new PlannedRun(ExperimentTask.RunName(r.Latent, r.Algorithm), $"{label}, J = {r.Latent}, {r.Algorithm.Name()}",
                                                   r.Algorithm, r.Latent, dir => create(r.Latent, r.Algorithm, dir))),
                   directory, data, options, log, progress, cancellationToken, endPoint);

    /// <summary>As <see cref="RunAll"/>, for runs named by the experiment: each in <see cref="PlannedRun.Name"/> under
    /// <paramref name="directory"/>, created by <see cref="PlannedRun.Create"/> in it.</summary>
    internal static (IReadOnlyList<ExperimentRun> Runs, bool Cancelled) RunPlanned(
        IEnumerable<PlannedRun> runs, string directory, DataSet data, TrainingOptions options, IProgress<string>? log,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken, EndPointOptions? endPoint)
    {
        var done = new List<ExperimentRun>();
        foreach (var run in runs)
        {
            string dir = Path.Combine(directory, run.Name);
            log?.Report($"{run.Label}: {dir}");
            var (skipped, series, cancelled) = Ensure(dir, () => run.Create(dir), data.Train, options with { TestData = data.Test }, progress, cancellationToken);
            if (skipped) log?.Report($"  finished earlier ({series.LastOrDefault()?.SamplesSeen ?? 0:N0} samples): skipped");
            else if (series.Count > 0) log?.Report(string.Create(CultureInfo.InvariantCulture, $"  {series[^1].SamplesSeen:N0} samples: train {series[^1].TrainBound:F2}, test {series[^1].TestBound:F2}"));
            if (!cancelled && endPoint is not null && series.Count > 0 && series[^1].SamplesSeen >= options.TotalSamples)
            {
                try
                {
                    if (EndPoint.Ensure(dir, run.Algorithm, data, endPoint, cancellationToken)) log?.Report($"  end point: {Path.Combine(dir, EndPointFileName)}");
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { cancelled = true; }
            }
            done.Add(Entry(run.Algorithm.Name(), run.LatentDimensions, dir, skipped, series));
            if (cancelled) return (done, true);
        }
        return (done, false);
    }

    /// <summary>The runs of <paramref name="runs"/> that an earlier invocation left in <paramref name="directory"/> (a
    /// metrics.csv in <c>j{J}-{algorithm}</c>), read without training them: results.json and the figure then show every
    /// run of the experiment, also when invocations split the algorithms between them.</summary>
    public static IReadOnlyList<ExperimentRun> ReadExisting(IEnumerable<(int Latent, TrainingAlgorithm Algorithm)> runs, string directory) =>
        [.. runs.Select(r => (r.Latent, r.Algorithm, Dir: Path.Combine(directory, ExperimentTask.RunName(r.Latent, r.Algorithm))))
                .Where(r => File.Exists(Path.Combine(r.Dir, "metrics.csv")))
                .Select(r => Entry(r.Algorithm.Name(), r.Latent, r.Dir, true, Vae.RunRecord.ReadEvaluations(Path.Combine(r.Dir, "metrics.csv"))))];

    /// <summary>Every run of <paramref name="tasks"/> as its directory under <paramref name="directory"/> (the task's
    /// name) holds it, read without training, and the names of those short of <paramref name="budget"/> (with the
    /// samples they reached).</summary>
    public static (IReadOnlyList<ExperimentRun> Runs, IReadOnlyList<string> Unfinished) Collect(IReadOnlyList<ExperimentTask> tasks, string directory, long budget)
    {
        var runs = new List<ExperimentRun>();
        var unfinished = new List<string>();
        foreach (var t in tasks)
        {
            string dir = Path.Combine(directory, t.Name);
            var series = Vae.RunRecord.ReadEvaluations(Path.Combine(dir, "metrics.csv"));
            if (series.Count > 0) runs.Add(Entry(t.Algorithm!.Value.Name(), t.LatentDimensions, dir, true, series));
            long reached = series.LastOrDefault()?.SamplesSeen ?? 0;
            if (reached < budget) unfinished.Add(string.Create(CultureInfo.InvariantCulture, $"{t.Name} ({reached:N0} of {budget:N0} samples)"));
        }
        return (runs, unfinished);
    }

    /// <summary>A run's entry in the results: its series and what its directory records (step size, trials, end point).</summary>
    internal static ExperimentRun Entry(string algorithm, int latent, string directory, bool skipped, IReadOnlyList<EvaluationResult> series) =>
        new(algorithm, latent, directory, skipped, series, ReadStepSize(directory), ReadStepSizeTrials(directory), ReadEndPoint(directory),
            algorithm == TrainingAlgorithm.MonteCarloEm.Name() ? ReadSamplesPerIteration(directory) : null);

    /// <summary>A Monte Carlo EM run's samples per EM iteration, 5 N, from the training images its options.txt records, or null.</summary>
    static long? ReadSamplesPerIteration(string directory) =>
        long.TryParse(ReadOption(directory, "train_images"), NumberStyles.Integer, CultureInfo.InvariantCulture, out long n) ? Vae.Core.Mcem.samplesPerIteration(n) : null;

    /// <summary>The value of a <c>key = value</c> line of a run directory's options.txt (<see cref="Vae.RunRecord"/>), or null.</summary>
    static string? ReadOption(string directory, string key) =>
        Vae.RunRecord.Exists(directory) ? Vae.RunRecord.Read(directory).Fields.GetValueOrDefault(key) : null;

    /// <summary>The evaluations in a run's metrics.csv (<see cref="Vae.RunRecord.ReadEvaluations"/>).</summary>
    [Obsolete("Use Vae.RunRecord.ReadEvaluations (or RunRecord.Read(directory).Evaluations); removed in the next version.")]
    public static IReadOnlyList<EvaluationResult> ReadMetrics(string path) => Vae.RunRecord.ReadEvaluations(path);

    /// <summary>The step size recorded in a run directory's options.txt, or null.</summary>
    static double? ReadStepSize(string directory) =>
        double.TryParse(ReadOption(directory, "step_size"), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : null;

    /// <summary>Section 5's trials recorded in a run directory, or null.</summary>
    static IReadOnlyList<StepSizeTrial>? ReadStepSizeTrials(string directory)
    {
        string path = Path.Combine(directory, StepSizeFileName);
        return File.Exists(path)
            ? JsonSerializer.Deserialize<List<StepSizeTrial>>(File.ReadAllText(path), TrialsJson) ?? throw new InvalidDataException($"{path}: expected a JSON array of trials")
            : null;
    }

    /// <summary>The file of a run directory that holds estimates of the finished model (<c>vae evaluate --json</c>'s output).</summary>
    public const string EndPointFileName = "end-point.json";

    /// <summary>The end-point estimates recorded in a run directory, or null.</summary>
    static IReadOnlyDictionary<string, JsonElement>? ReadEndPoint(string directory)
    {
        string path = Path.Combine(directory, EndPointFileName);
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(File.ReadAllText(path)) ?? throw new JsonException("null"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: expected a JSON object of estimates ({e.Message})", e); }
    }

    /// <summary>Log-spaced training-sample counts from <paramref name="first"/> to <paramref name="last"/>, with
    /// <paramref name="perDecade"/> points per factor of ten, and <paramref name="last"/> itself.</summary>
    public static IReadOnlyList<long> LogSpaced(long first, long last, int perDecade = 4)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(first, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(perDecade, 1);
        var points = new SortedSet<long>();
        for (int k = 0; ; k++)
        {
            long p = (long)Math.Round(first * Math.Pow(10, (double)k / perDecade));
            if (p >= last) break;
            points.Add(p);
        }
        points.Add(last);
        return [.. points];
    }
}
