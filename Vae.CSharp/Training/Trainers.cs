using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using Vae.Core;
using Vae.Data;

namespace Vae;

/// <summary>Progress of a training run, reported a few times a second.</summary>
/// <param name="Step">Minibatch steps taken.</param>
/// <param name="SamplesSeen">Training samples evaluated (steps x M).</param>
/// <param name="TotalSamples">The run's budget in samples.</param>
/// <param name="SamplesPerSecond">Throughput since this call to Fit started.</param>
/// <param name="RunningBound">Mean minibatch bound per datapoint over the recent steps (nats).</param>
public sealed record TrainingProgress(long Step, long SamplesSeen, long TotalSamples, double SamplesPerSecond, double RunningBound);

/// <summary>An evaluation during training: average lower bounds per datapoint (estimator B, L = 1, nats); for Monte
/// Carlo EM, which has no recognition model, Appendix D estimates of log p(x) instead.</summary>
/// <param name="SamplesSeen">Training samples evaluated so far.</param>
/// <param name="Seconds">Training time so far: the trainer's own when it has trained before; a resumed run continues
/// from the time recorded with its checkpoint, or from its last recorded evaluation where that is later.</param>
/// <param name="TrainBound">Bound on the training set.</param>
/// <param name="TestBound">Bound on the test set, or NaN without test data.</param>
public sealed record EvaluationResult(long SamplesSeen, double Seconds, double TrainBound, double TestBound);

/// <summary>The outcome of <see cref="Trainer.Fit"/>.</summary>
/// <param name="Steps">Steps taken in total (including before a resume).</param>
/// <param name="SamplesSeen">Training samples evaluated in total.</param>
/// <param name="Seconds">Time this call spent.</param>
/// <param name="SamplesPerSecond">Throughput of this call.</param>
/// <param name="Cancelled">Whether cancellation stopped the run before its budget.</param>
/// <param name="Evaluations">The evaluations made by this call.</param>
public sealed record TrainingSummary(long Steps, long SamplesSeen, double Seconds, double SamplesPerSecond, bool Cancelled, IReadOnlyList<EvaluationResult> Evaluations);

/// <summary>How long to train and what to record.</summary>
public sealed record TrainingOptions
{
    /// <summary>Training samples to evaluate in total (steps x M); a resumed run continues to this total.</summary>
    public long TotalSamples { get; init; } = 1_000_000;
    /// <summary>Evaluate the train and test bounds every this many training samples (and at the end); 0: only at the end.</summary>
    public long EvaluateEvery { get; init; } = 100_000;
    /// <summary>Evaluate at these training-sample counts (rounded up to whole steps) instead of every
    /// <see cref="EvaluateEvery"/> samples, and at the end: e.g. log-spaced points for a learning curve. Null: use
    /// <see cref="EvaluateEvery"/>.</summary>
    public IReadOnlyList<long>? EvaluateAt { get; init; }
    /// <summary>Test data for the evaluations, or null.</summary>
    public ImageData? TestData { get; init; }
    /// <summary>Evaluate the training bound on at most this many training images (all when null).</summary>
    public int? TrainEvaluationLimit { get; init; }
    /// <summary>A run directory: holds <c>checkpoint.safetensors</c> (written at every evaluation, every
    /// <see cref="CheckpointInterval"/> between them and at the end) with <c>clock.txt</c> (its training time),
    /// <c>metrics.csv</c> and <c>options.txt</c>, and a lock so that two runs never share it. Null: nothing written.</summary>
    public string? RunDirectory { get; init; }
    /// <summary>The estimator of the evaluations, applied to the first <see cref="MarginalLikelihoodPoints"/> training
    /// and test images; null: the lower bound (estimator B, L = 1) on the training (see
    /// <see cref="TrainEvaluationLimit"/>) and test sets. Monte Carlo EM has no recognition model and so no bound: with
    /// null it uses Appendix D's estimator with its default settings.</summary>
    public MarginalLikelihoodOptions? Estimator { get; init; }
    /// <summary>Training and test images that <see cref="Estimator"/> is applied to (the first ones).</summary>
    public int MarginalLikelihoodPoints { get; init; } = 100;
    /// <summary>Write TensorBoard event files into the run directory's <c>tensorboard</c> folder: at every evaluation the
    /// train and test values, samples/s, and a mosaic of decoder means of prior samples. Needs a run directory.</summary>
    public bool TensorBoard { get; init; } = true;
    /// <summary>Called after each evaluation.</summary>
    public Action<EvaluationResult>? Evaluated { get; init; }
    /// <summary>The least time between two progress reports (default a quarter of a second); zero reports every step.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(0.25);
    /// <summary>Extra text fields stored in checkpoints (e.g. the command line's options).</summary>
    public IReadOnlyDictionary<string, string>? CheckpointFields { get; init; }
    /// <summary>With a run directory, also write the checkpoint between evaluations once this much training time has
    /// passed since the last one, so that a killed process or a reclaimed machine loses at most this much training
    /// (checkpoints do not change the trajectory). Null: only at evaluations, on cancellation and at the end.</summary>
    public TimeSpan? CheckpointInterval { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>Receives the run's start and end (Information), each evaluation (Information), each checkpoint written
    /// (Debug), a cancellation (Information) and a non-finite bound (Error). Null: nothing is logged. The trainer also
    /// publishes metrics and activities under <see cref="VaeTelemetry"/>.</summary>
    public ILogger? Logger { get; init; }
    /// <summary>On a new run's first <see cref="Trainer.Fit"/>, fit a per-feature standardisation of the inputs on the
    /// training data (<see cref="InputStandardization.Fit"/>) and train the model on standardised data; the
    /// standardisation becomes part of the model (<see cref="VariationalAutoEncoder.Standardization"/>, saved with it and
    /// kept by a resumed run), and evaluations report bounds in the data's own units. For Gaussian and linear-Gaussian
    /// decoders (a Bernoulli decoder's data are in [0, 1]).</summary>
    public bool StandardizeInputs { get; init; }
}

/// <summary>The learning algorithms of the paper's experiments.</summary>
public enum TrainingAlgorithm
{
    /// <summary>Auto-Encoding Variational Bayes (Algorithm 1).</summary>
    Aevb,
    /// <summary>The wake-sleep algorithm (Hinton et al.), the baseline of Figure 2.</summary>
    WakeSleep,
    /// <summary>Monte Carlo EM with HMC E-steps, the baseline of Figure 3.</summary>
    MonteCarloEm,
}

/// <summary>The names runs, files and the command line use for the algorithms.</summary>
public static class TrainingAlgorithms
{
    /// <summary>The algorithm that a name ("aevb", "wake-sleep" or "mcem") names, or false.</summary>
    public static bool TryParse(string name, out TrainingAlgorithm algorithm)
    {
        foreach (var a in Enum.GetValues<TrainingAlgorithm>())
            if (a.Name() == name) { algorithm = a; return true; }
        algorithm = default;
        return false;
    }

    /// <summary>"aevb", "wake-sleep" or "mcem".</summary>
    public static string Name(this TrainingAlgorithm algorithm) => algorithm switch
    {
        TrainingAlgorithm.Aevb => "aevb",
        TrainingAlgorithm.WakeSleep => "wake-sleep",
        TrainingAlgorithm.MonteCarloEm => "mcem",
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, "expected Aevb, WakeSleep or MonteCarloEm"),
    };
}

/// <summary>What a run directory records of its run's schedule (<see cref="Trainer.RecordedSchedule"/>).</summary>
/// <param name="TotalSamples">The training samples the run was asked to reach, or null.</param>
/// <param name="EvaluateEvery">The samples between evaluations, or null.</param>
public sealed record RunSchedule(long? TotalSamples, long? EvaluateEvery);

/// <summary>A run's libtorch thread count changed to <paramref name="Threads"/> when it resumed at
/// <paramref name="FromSamples"/> samples.</summary>
public sealed record ThreadChange(int Threads, long FromSamples);

/// <summary>The libtorch thread counts a run trained with: the count it began with (null where its record does not say)
/// and each change on resuming. float32 sums round by thread count, so these belong to a run's trajectory.</summary>
public sealed record RunThreads(int? First, IReadOnlyList<ThreadChange> Changes)
{
    /// <summary>The thread count of the run's last segment.</summary>
    public int? Current => Changes.Count > 0 ? Changes[^1].Threads : First;
}

/// <summary>Trains a <see cref="VariationalAutoEncoder"/> reproducibly: the same options and seed give
/// bit-identical parameters, and a resumed run ends where an uninterrupted one does. See
/// <see cref="AevbTrainer"/> and <see cref="WakeSleepTrainer"/>.</summary>
public abstract class Trainer : IDisposable
{
    /// <summary>The checkpoint file's name inside a run directory: safetensors, so PyTorch and the Hugging Face tools
    /// read the model (parameters under their <c>nn.Linear</c> names; the run's settings and progress in the metadata).</summary>
    public const string CheckpointFileName = "checkpoint.safetensors";

    /// <summary>The name run directories used for their checkpoint before <see cref="CheckpointFileName"/>, in Vae's
    /// own format; such runs still load and resume, and their next checkpoint replaces it.</summary>
    public const string LegacyCheckpointFileName = "checkpoint.vae";

    TrainingRun _run;
    bool _disposed;
    // The inputs' standardisation, fitted on the first Fit that asks for it or read from the checkpoint; null: none.
    InputStandardization? _standardization;
    // Training time over the run's life; null for a resumed run until it trains (its run directory's record holds it).
    double? _seconds = 0;

    /// <summary>The run, or ObjectDisposedException after <see cref="Dispose"/>.</summary>
    TrainingRun Run
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _run;
        }
    }

    /// <summary>Frees the run's native memory (parameters, Adagrad's state, Monte Carlo EM's chains, the generator); the
    /// trainer and its <see cref="Model"/> cannot be used afterwards. Save a checkpoint or the model first to keep them.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        TrainingRunModule.dispose(_run);
    }

    private protected Trainer(Algorithm algorithm, VaeModelOptions? model, AevbOptions? options, string dataset)
    {
        options ??= new AevbOptions();
        options.Validate();
        model ??= new VaeModelOptions();
        MemoryBudget.Require("this model", ("parameters and optimiser state", MemoryBudget.ModelBytes(model)),
                             ("one step's activations", MemoryBudget.StepBytes(model, options.BatchSize)));
        _run = TrainingRunModule.create(new RunSettings(algorithm, model.ToCore(), options.ToCore(), options.Seed, dataset));
    }

    // A run restored from a checkpoint: its training time is in its run directory's record, not known here.
    private protected Trainer(TrainingRun run) => (_run, _seconds) = (run, null);

    /// <summary>The checkpoint a path names: the path itself when it is not a directory; in a run directory its
    /// <see cref="CheckpointFileName"/>, or its <see cref="LegacyCheckpointFileName"/> when only that exists.</summary>
    public static string CheckpointPath(string checkpointOrDirectory)
    {
        ArgumentNullException.ThrowIfNull(checkpointOrDirectory);
        return Directory.Exists(checkpointOrDirectory) ? CheckpointIn(checkpointOrDirectory) : checkpointOrDirectory;
    }

    /// <summary>A run directory's checkpoint (whether or not it exists yet), as <see cref="CheckpointPath"/>.</summary>
    internal static string CheckpointIn(string directory)
    {
        string current = Path.Combine(directory, CheckpointFileName), legacy = Path.Combine(directory, LegacyCheckpointFileName);
        return !File.Exists(current) && File.Exists(legacy) ? legacy : current;
    }

    /// <summary>The budget and evaluation interval a run directory's record gives its run (what the last
    /// <see cref="Fit"/> into it was asked for), so that a resumed run keeps them unless told otherwise; null fields
    /// where the directory has no record or the record does not say.</summary>
    public static RunSchedule RecordedSchedule(string runDirectory)
    {
        ArgumentNullException.ThrowIfNull(runDirectory);
        return RunRecord.TryRead(runDirectory)?.Schedule ?? new RunSchedule(null, null);
    }

    /// <summary>The thread counts a run directory's record gives its run (<c>threads</c> and <c>thread_changes</c> in
    /// options.txt), so that a resumed run keeps its count unless told otherwise and a replay follows each change.</summary>
    public static RunThreads RecordedThreads(string runDirectory)
    {
        ArgumentNullException.ThrowIfNull(runDirectory);
        return RunRecord.TryRead(runDirectory)?.Threads ?? new RunThreads(null, []);
    }

    /// <summary>The name <c>vae train</c> gives a run directory when none is chosen: the data set, J, the algorithm with
    /// its estimator or objective, deeper networks and Adam (so that such a run never takes the paper's run's
    /// directory) and the seed, as <c>mnist-j20-aevb-b-seed0</c> or <c>binarized-mnist-j50-aevb-iwae-k5-layers2-adam-seed1</c>.</summary>
    public static string RunName(string dataSet, TrainingAlgorithm algorithm, int latentDimensions, int hiddenLayers, AevbOptions options)
    {
        ArgumentNullException.ThrowIfNull(dataSet);
        ArgumentNullException.ThrowIfNull(options);
        string label = algorithm != TrainingAlgorithm.Aevb ? algorithm.Name()
            : options.Objective == TrainingObjective.ImportanceWeighted
                ? $"aevb-iwae-k{options.SamplesPerDatapoint}" + (options.EncoderGradient == EncoderGradient.DoublyReparameterised ? "-dreg" : "")
            : (options.Estimator == SgvbEstimator.A ? "aevb-a" : "aevb-b") + (options.SamplesPerDatapoint > 1 ? $"-l{options.SamplesPerDatapoint}" : "");
        string variant = (hiddenLayers != 1 ? $"-layers{hiddenLayers}" : "") + (options.Optimizer == TrainingOptimizer.Adam ? "-adam" : "");
        return string.Create(CultureInfo.InvariantCulture, $"{dataSet}-j{latentDimensions}-{label}{variant}-seed{options.Seed}");
    }

    /// <summary>Whether a directory holds a training run's record (its settings, as <see cref="Fit"/> writes them).</summary>
    public static bool IsRunDirectory(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        return RunRecord.Exists(directory);
    }

    /// <summary>Continues the run saved in a checkpoint (a file, or a run directory holding a checkpoint),
    /// whichever algorithm it uses.</summary>
    public static Trainer Resume(string checkpoint)
    {
        string path = CheckpointPath(checkpoint);
        var contents = Checkpoint.load(path);
        TrainingRun run;
        InputStandardization? standardization;
        try
        {
            run = TrainingRunModule.ofCheckpoint(path, contents);
            standardization = InputStandardization.FromFields(path, contents.Fields.ToDictionary(kv => kv.Key, kv => kv.Value));
        }
        finally { Checkpoint.dispose(contents); } // the run holds copies
        Trainer trainer = run.Settings.Algorithm.IsAevbAlgorithm ? new AevbTrainer(run)
            : run.Settings.Algorithm.IsWakeSleepAlgorithm ? new WakeSleepTrainer(run)
            : new McemTrainer(run);
        trainer._standardization = standardization;
        return trainer;
    }

    /// <summary>The learning algorithm.</summary>
    public TrainingAlgorithm Algorithm => Run.Settings.Algorithm.IsAevbAlgorithm ? TrainingAlgorithm.Aevb
        : _run.Settings.Algorithm.IsWakeSleepAlgorithm ? TrainingAlgorithm.WakeSleep : TrainingAlgorithm.MonteCarloEm;

    /// <summary>The model being trained (its parameters change as training proceeds). It belongs to the trainer: it is
    /// freed with the trainer, and disposing it frees nothing; save it to keep it.</summary>
    public VariationalAutoEncoder Model => new(Run.State.Model, ownsTensors: false, _standardization);
    /// <summary>The model's architecture.</summary>
    public VaeModelOptions ModelOptions => VaeModelOptions.FromCore(Run.Settings.Model);
    /// <summary>The training settings.</summary>
    public AevbOptions Options => AevbOptions.FromCore(Run.Settings.Learner, Run.Settings.Seed);
    /// <summary>The data set's name recorded with the run.</summary>
    public string Dataset => Run.Settings.Dataset;
    /// <summary>How the steps compute their gradient: "hand-derived" (the fused step: backpropagation written out over
    /// the parameter vector), "hand-derived, bfloat16 multiplies", "hand-derived, one-pass float32"
    /// (<see cref="GradientComputation.OnePass"/>), or "autograd" (settings the fused step does not cover).</summary>
    public string GradientPath => TrainingRunModule.gradientPath(Run);
    /// <summary>Steps taken.</summary>
    public long Step => Run.Step;
    /// <summary>Training samples evaluated (steps x M).</summary>
    public long SamplesSeen => Run.SamplesSeen;

    /// <summary>Saves the whole run (parameters, optimiser and generator state, settings, progress) atomically, as
    /// safetensors (the optimiser's and the generator's state as tensors of their own) or, for a name ending in .vae,
    /// in the project's original format.</summary>
    public void SaveCheckpoint(string path, IReadOnlyDictionary<string, string>? fields = null) =>
        Checkpoint.save(path, TrainingRunModule.toCheckpoint(ToMap(fields), Run));

    /// <summary>A checkpoint's extra fields: the caller's under <c>run.</c>, and the inputs' standardisation.</summary>
    Microsoft.FSharp.Collections.FSharpMap<string, string> ToMap(IReadOnlyDictionary<string, string>? fields) =>
        new((fields ?? new Dictionary<string, string>()).Select(kv => Tuple.Create("run." + kv.Key, kv.Value))
            .Concat((_standardization?.Fields ?? []).Select(kv => Tuple.Create(kv.Key, kv.Value))));

    /// <summary>Trains on <paramref name="train"/> until <see cref="TrainingOptions.TotalSamples"/> samples have been
    /// evaluated or <paramref name="cancellationToken"/> is cancelled (the current step finishes, then a checkpoint is
    /// written to the run directory). A non-finite bound throws <see cref="NonFiniteBoundException"/> after saving the
    /// last good state.</summary>
    public TrainingSummary Fit(ImageData train, TrainingOptions options, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(options);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (train.Dimension != _run.Settings.Model.InputDim)
            throw new ArgumentException($"train: expected images of {_run.Settings.Model.InputDim} values, got {train.Dimension}", nameof(train));
        if (options.TestData is { } test && test.Dimension != train.Dimension)
            throw new ArgumentException($"test data: expected images of {train.Dimension} values, got {test.Dimension}", nameof(options));
        if (options.TotalSamples < 0 || options.EvaluateEvery < 0 || options.EvaluateAt?.Any(s => s < 0) == true)
            throw new ArgumentOutOfRangeException(nameof(options), "total samples and evaluation points must be non-negative");
        if (options.CheckpointInterval < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(options), options.CheckpointInterval, "CheckpointInterval: expected a non-negative time or null");
        TrainingRunModule.requireTrainingSize(train.Count, _run);
        // Monte Carlo EM's step works on every training datapoint (its chains and its full-batch M-step), not a minibatch.
        MemoryBudget.Require("training", ("training and test data", MemoryBudget.DataBytes(ModelOptions, train.Count + (options.TestData?.Count ?? 0))),
                             ("one step's activations", MemoryBudget.StepBytes(ModelOptions, _run.Settings.Algorithm.IsMcemAlgorithm ? train.Count : _run.Settings.Learner.BatchSize)));
        if (_run.Settings.Model.Likelihood.IsBernoulli)
            Vae.Core.Data.ImagesModule.requireUnitInterval("training data", train.Images);
        if (options.StandardizeInputs && _standardization is null)
        {
            if (!(_run.Settings.Model.Likelihood.IsGaussian || _run.Settings.Model.Likelihood.IsLinearGaussian))
                throw new ArgumentException("StandardizeInputs: applies to Gaussian and linear-Gaussian decoders (a Bernoulli decoder's data, and the sigmoid-mean decoder's means, lie in [0, 1])", nameof(options));
            if (_run.Step > 0) throw new ArgumentException("StandardizeInputs: a run that has trained on unstandardised data cannot start standardising", nameof(options));
            _standardization = InputStandardization.Fit(train);
        }
        // The networks see standardised data; the evaluations are reported in the data's own units.
        double logScaleSum = _standardization?.LogScaleSum ?? 0;
        if (_standardization is not null)
        {
            train = _standardization.Standardize(train);
            if (options.TestData is { } testImages) options = options with { TestData = _standardization.Standardize(testImages) };
        }

        using var directory = options.RunDirectory is null ? null : RunDirectory.Open(options.RunDirectory);
        // The record matches the checkpoint: rows and events beyond it are dropped, and the clock continues from the
        // time recorded with the checkpoint (the last row kept, where none was).
        double recorded = directory?.CutMetricsTo(_run.SamplesSeen) ?? 0;
        double secondsBefore = Math.Max(recorded, _seconds ?? directory?.SecondsAtOrBefore(_run.Step) ?? 0);
        if (directory is not null) TensorBoardLog.CutTo(directory.Path, _run.SamplesSeen);
        using var board = directory is not null && options.TensorBoard ? new TensorBoardLog(directory.Path, train.Height, train.Width) : null;
        // A resumed run keeps the rule its Appendix D evaluations began with: records made before stuck chains were
        // estimated again have no appendix_d_stuck_chains line and kept them.
        var appendixD = options.Estimator ?? (_run.Settings.Algorithm.IsMcemAlgorithm ? new MarginalLikelihoodOptions { Method = MarginalLikelihoodMethod.HmcMarginal } : null);
        if (directory is not null && _run.SamplesSeen > 0 && appendixD is { Method: MarginalLikelihoodMethod.HmcMarginal, RetryStuckChains: true }
            && RunRecord.TryRead(directory.Path) is { RetriesStuckChains: false })
            options = options with { Estimator = appendixD with { RetryStuckChains = false } };
        directory?.WriteOptions(this, train, options);
        var dtype = _run.Settings.Model.DType;
        using var trainTensor = train.ToTensor(dtype);
        int trainEvalCount = options.TrainEvaluationLimit is int limit && limit < train.Count ? limit : train.Count;
        // Under dynamic binarisation the model is one of binary data: its evaluations see one fixed binary draw of the
        // evaluation images (ImageData.BinarizedOnce), so that every bound is on a true log p(x), never on grey levels.
        bool binary = _run.Settings.Learner.Binarize;
        using var evaluationTrain = binary
            ? train.First(Math.Max(trainEvalCount, Math.Min(options.MarginalLikelihoodPoints, train.Count))).BinarizedOnce(ImageData.TrainEvaluationBinarizationSeed).ToTensor(dtype)
            : trainTensor.alias();
        using var testTensor = binary ? options.TestData?.BinarizedOnce(ImageData.TestBinarizationSeed).ToTensor(dtype) : options.TestData?.ToTensor(dtype);
        using var trainEval = evaluationTrain.narrow(0, 0, trainEvalCount);

        long batch = TrainingRunModule.samplesPerStep(train.Count, _run);
        long untilStep = (options.TotalSamples + batch - 1) / batch;
        long evalSteps = options.EvaluateEvery <= 0 ? long.MaxValue : Math.Max(1, options.EvaluateEvery / batch);
        // The next step at which to evaluate after step: from the explicit points, or the next multiple of evalSteps.
        long[] evalAt = options.EvaluateAt is { } at ? [.. at.Select(s => (s + batch - 1) / batch).Order()] : [];
        long NextEvaluation(long step) => options.EvaluateAt is null
            ? (evalSteps == long.MaxValue ? untilStep : Math.Min(untilStep, (step / evalSteps + 1) * evalSteps))
            : Math.Min(untilStep, evalAt.FirstOrDefault(e => e > step, untilStep));
        var evaluations = new List<EvaluationResult>();
        var clock = Stopwatch.StartNew();
        long startStep = _run.Step;
        double runningSum = 0; int runningCount = 0; double lastReport = 0, lastStep = 0;
        var fields = ToMap(options.CheckpointFields);
        var log = options.Logger ?? NullLogger.Instance;
        KeyValuePair<string, object?>[] tags = [new("vae.algorithm", Algorithm.Name()), new("vae.dataset", Dataset)];
        using var fitActivity = VaeTelemetry.ActivitySource.StartActivity("vae.fit");
        fitActivity?.SetTag("vae.algorithm", Algorithm.Name()).SetTag("vae.dataset", Dataset).SetTag("vae.total_samples", options.TotalSamples);
        log.LogInformation("{Algorithm} on {Dataset}: {Start} of {Total} samples, gradient {Gradient}, run directory {Directory}",
            Algorithm.Name(), Dataset, _run.SamplesSeen, options.TotalSamples, GradientPath, options.RunDirectory ?? "(none)");

        EvaluationResult Evaluate()
        {
            using var activity = VaeTelemetry.ActivitySource.StartActivity("vae.evaluate");
            activity?.SetTag("vae.samples", _run.SamplesSeen);
            var g = TrainingRunModule.evaluationGenerator(_run);
            double trainBound, testBound;
            var estimator = options.Estimator ?? (_run.Settings.Algorithm.IsMcemAlgorithm ? new MarginalLikelihoodOptions { Method = MarginalLikelihoodMethod.HmcMarginal } : null);
            if (estimator is not null)
            {
                var e = new MarginalLikelihoodEstimator(estimator);
                int points = options.MarginalLikelihoodPoints;
                using (var first = evaluationTrain.narrow(0, 0, Math.Min(points, train.Count))) trainBound = e.Estimate(_run.State.Model, first, g);
                if (testTensor is null) testBound = double.NaN;
                else using (var first = testTensor.narrow(0, 0, Math.Min(points, (int)testTensor.shape[0]))) testBound = e.Estimate(_run.State.Model, first, g);
            }
            else
            {
                trainBound = Evaluation.bound(EstimatorKind.B, _run.State.Model, trainEval, 1000, g);
                testBound = testTensor is null ? double.NaN : Evaluation.bound(EstimatorKind.B, _run.State.Model, testTensor, 1000, g);
            }
            trainBound -= logScaleSum; testBound -= logScaleSum;
            var result = new EvaluationResult(_run.SamplesSeen, secondsBefore + clock.Elapsed.TotalSeconds, trainBound, testBound);
            evaluations.Add(result);
            directory?.AppendMetrics(result);
            board?.Write(result, estimator is null ? "lower_bound" : "log_likelihood", (_run.Step - startStep) * batch / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), _run.State.Model);
            VaeTelemetry.Bound.Record(trainBound, [.. tags, new("vae.split", "train")]);
            if (!double.IsNaN(testBound)) VaeTelemetry.Bound.Record(testBound, [.. tags, new("vae.split", "test")]);
            log.LogInformation("evaluation at {Samples} samples: train {TrainBound:F2}, test {TestBound:F2} nats per datapoint",
                result.SamplesSeen, result.TrainBound, result.TestBound);
            options.Evaluated?.Invoke(result);
            return result;
        }

        double lastSave = 0, every = directory is not null && options.CheckpointInterval is { } interval ? interval.TotalSeconds : double.PositiveInfinity;
        long savedStep = -1;
        void Save()
        {
            if (directory is null || _run.Step == savedStep) return;
            using var activity = VaeTelemetry.ActivitySource.StartActivity("vae.checkpoint");
            activity?.SetTag("vae.samples", _run.SamplesSeen);
            directory.SaveCheckpoint(TrainingRunModule.toCheckpoint(fields, _run), _run.Step, secondsBefore + clock.Elapsed.TotalSeconds);
            (lastSave, savedStep) = (clock.Elapsed.TotalSeconds, _run.Step);
            VaeTelemetry.Checkpoints.Add(1, tags);
            log.LogDebug("checkpoint at {Samples} samples in {Directory}", _run.SamplesSeen, directory.Path);
        }

        try
        {
            while (_run.Step < untilStep && !cancellationToken.IsCancellationRequested)
            {
                long nextEval = NextEvaluation(_run.Step);
                // Training stops (between steps) for a checkpoint that falls due before the next evaluation, or when cancelled.
                _run = TrainingRunModule.fitWhile(trainTensor, nextEval, Microsoft.FSharp.Core.FuncConvert.FromFunc<TrainingRun, double, bool>((run, bound) =>
                {
                    _run = run; // the last good step's record, should the next step raise NonFiniteBoundException
                    double now = clock.Elapsed.TotalSeconds;
                    VaeTelemetry.Samples.Add(batch, tags);
                    if (VaeTelemetry.StepDuration.Enabled) VaeTelemetry.StepDuration.Record(now - lastStep, tags);
                    lastStep = now;
                    bool checkpointDue = now - lastSave >= every;
                    runningSum += bound; runningCount++;
                    if (progress is not null && now - lastReport >= options.ProgressInterval.TotalSeconds)
                    {
                        lastReport = now;
                        double rate = (run.Step - startStep) * batch / Math.Max(now, 1e-9);
                        progress.Report(new TrainingProgress(run.Step, run.SamplesSeen, options.TotalSamples, rate, runningSum / runningCount));
                        VaeTelemetry.Throughput.Record(rate, tags);
                        runningSum = 0; runningCount = 0;
                    }
                    return !checkpointDue && !cancellationToken.IsCancellationRequested;
                }), _run);
                if (_run.Step == nextEval || _run.Step == untilStep)
                {
                    Evaluate();
                    Save();
                }
                else if (!cancellationToken.IsCancellationRequested) Save();
            }
        }
        catch (NonFiniteBoundException e)
        {
            Save(); // the parameters and the record of the last good step (the generator has drawn the failed step's noise)
            log.LogError(e, "the bound is not finite at step {Step}; the last good step's parameters are kept", _run.Step);
            fitActivity?.SetStatus(ActivityStatusCode.Error, e.Message);
            throw;
        }
        finally
        {
            _seconds = secondsBefore + clock.Elapsed.TotalSeconds;
        }
        bool cancelled = _run.Step < untilStep;
        if (cancelled) Save();
        double seconds = clock.Elapsed.TotalSeconds;
        if (cancelled) log.LogInformation("cancelled at {Samples} samples", _run.SamplesSeen);
        log.LogInformation("{Action} at {Samples} samples: {Rate:F0} samples/s over {Seconds:F1} s",
            cancelled ? "stopped" : "finished", _run.SamplesSeen, (_run.Step - startStep) * batch / Math.Max(seconds, 1e-9), seconds);
        return new TrainingSummary(_run.Step, _run.SamplesSeen, seconds, (_run.Step - startStep) * batch / Math.Max(seconds, 1e-9), cancelled, evaluations);
    }

    /// <summary>Runs <see cref="Fit"/> on a worker thread.</summary>
    public Task<TrainingSummary> FitAsync(ImageData train, TrainingOptions options, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => Fit(train, options, progress, cancellationToken), CancellationToken.None);
}

/// <summary>Trains a <see cref="VariationalAutoEncoder"/> with AEVB (Algorithm 1): the SGVB estimator's gradient
/// with respect to encoder and decoder together, ascended by Adagrad.</summary>
public sealed class AevbTrainer : Trainer
{
    /// <summary>A new run: a model created from <paramref name="model"/> and the seed in <paramref name="aevb"/>.</summary>
    public AevbTrainer(VaeModelOptions? model = null, AevbOptions? aevb = null, string dataset = "custom")
        : base(Vae.Core.Algorithm.AevbAlgorithm, model, aevb, dataset) { }

    internal AevbTrainer(TrainingRun run) : base(run) { }

    /// <summary>Continues the AEVB run saved in a checkpoint (a file, or a run directory holding a checkpoint).</summary>
    public static new AevbTrainer Resume(string checkpoint) => Trainer.Resume(checkpoint) switch
    {
        AevbTrainer aevb => aevb,
        var other => throw new CheckpointException(CheckpointPath(checkpoint), $"field 'algorithm' = '{other.Algorithm.Name()}', expected 'aevb'"),
    };
}

/// <summary>Trains a <see cref="VariationalAutoEncoder"/> with the wake-sleep algorithm (the paper's baseline): the
/// wake phase ascends log p(x, z) for z ~ q(z|x) with respect to the decoder, the sleep phase ascends log q(z|x) for
/// fantasies (z, x) ~ p with respect to the encoder. It uses the minibatch, optimiser, weight prior, binarisation and
/// seed of its <see cref="AevbOptions"/>; the estimator is not used.</summary>
public sealed class WakeSleepTrainer : Trainer
{
    /// <summary>A new run: a model created from <paramref name="model"/> and the seed in <paramref name="options"/>.</summary>
    public WakeSleepTrainer(VaeModelOptions? model = null, AevbOptions? options = null, string dataset = "custom")
        : base(Vae.Core.Algorithm.WakeSleepAlgorithm, model, options, dataset) { }

    internal WakeSleepTrainer(TrainingRun run) : base(run) { }
}

/// <summary>Trains the decoder of a <see cref="VariationalAutoEncoder"/> with Monte Carlo EM (Appendix E; the encoder is
/// not used). Each step is an EM iteration over the whole training set, as in the paper's code: one HMC transition of a
/// persistent chain per training datapoint (10 leapfrog steps, step size tuned towards 90% acceptance), then 5 Adagrad
/// weight updates along the full-batch gradient. A step counts as 5N training samples (the datapoints its weight updates
/// evaluate), and the batch size is not used. Evaluations report Appendix D estimates of log p(x).</summary>
public sealed class McemTrainer : Trainer
{
    /// <summary>A new run: a model created from <paramref name="model"/> and the seed in <paramref name="options"/>.</summary>
    public McemTrainer(VaeModelOptions? model = null, AevbOptions? options = null, string dataset = "custom")
        : base(Vae.Core.Algorithm.McemAlgorithm, model, options, dataset) { }

    internal McemTrainer(TrainingRun run) : base(run) { }
}
