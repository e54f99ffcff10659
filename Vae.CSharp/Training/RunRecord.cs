using System.Globalization;

namespace Vae;

/// <summary>A training run's record as its run directory keeps it: <c>options.txt</c> (the settings, seed, thread counts
/// and machine), <c>metrics.csv</c> (the evaluations) and <c>clock.txt</c> (the training time of the checkpoint), read
/// without the checkpoint. The one reader of those files: resuming, <c>vae verify</c>, the experiments and the CLI all
/// go through it, and <see cref="Trainer.Fit"/> writes them.</summary>
public sealed class RunRecord
{
    internal const string OptionsFile = "options.txt", MetricsFile = "metrics.csv", ClockFile = "clock.txt";
    internal const string StuckChainsField = "appendix_d_stuck_chains", StuckChainsRetried = "estimated again", StuckChainsKept = "kept";

    IReadOnlyList<EvaluationResult>? _evaluations;

    RunRecord(string directory, IReadOnlyDictionary<string, string> fields) { Directory = directory; Fields = fields; }

    /// <summary>The run directory.</summary>
    public string Directory { get; }
    /// <summary>Each <c>key = value</c> line of <c>options.txt</c> (the first, where a key repeats).</summary>
    public IReadOnlyDictionary<string, string> Fields { get; }
    /// <summary>The recorded evaluations, in order of samples (none before the first), read from <c>metrics.csv</c> when
    /// first asked for (<see cref="ReadEvaluations"/>).</summary>
    public IReadOnlyList<EvaluationResult> Evaluations => _evaluations ??= ReadEvaluations(Path.Combine(Directory, MetricsFile));

    /// <summary>Whether <paramref name="directory"/> holds a run's record (its <c>options.txt</c>).</summary>
    public static bool Exists(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        return File.Exists(Path.Combine(directory, OptionsFile));
    }

    /// <summary>Reads the record in <paramref name="directory"/>; a directory without <c>options.txt</c> is an
    /// <see cref="InvalidDataException"/>. Each field (and <c>metrics.csv</c>) is checked when its property is first read,
    /// and one that cannot be read is an <see cref="InvalidDataException"/> naming the file, the field and what was
    /// expected.</summary>
    public static RunRecord Read(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        string options = Path.Combine(directory, OptionsFile);
        if (!File.Exists(options)) throw new InvalidDataException($"{options}: no such file (a run directory records its settings there)");
        return Load(directory);
    }

    /// <summary>The record in <paramref name="directory"/>, or null where it has none yet (a run about to begin).</summary>
    internal static RunRecord? TryRead(string directory) => Exists(directory) ? Load(directory) : null;

    static RunRecord Load(string directory)
    {
        var fields = new Dictionary<string, string>();
        foreach (var line in File.ReadLines(Path.Combine(directory, OptionsFile)))
            if (line.Split(" = ", 2) is [var key, var value]) fields.TryAdd(key.Trim(), value.Trim());
        return new RunRecord(directory, fields);
    }

    /// <summary>The evaluations in a run's <c>metrics.csv</c> at <paramref name="path"/>, one per sample count (an
    /// evaluation repeated after a crash between it and its checkpoint keeps its last value), in order of samples; none
    /// where the file does not exist. A row that cannot be read is an <see cref="InvalidDataException"/> naming the file,
    /// line and field.</summary>
    public static IReadOnlyList<EvaluationResult> ReadEvaluations(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) return [];
        var rows = new SortedDictionary<long, EvaluationResult>();
        var lines = File.ReadAllLines(path);
        for (int i = 1; i < lines.Length; i++)
        {
            var f = lines[i].Split(',');
            double Num(int k, string field) => f.Length > k && f[k].Length == 0 ? double.NaN
                : f.Length > k && double.TryParse(f[k], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
                : throw new InvalidDataException($"{path}: line {i + 1}: field '{field}' = '{(f.Length > k ? f[k] : "")}', expected a number");
            if (!long.TryParse(f[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out long samples))
                throw new InvalidDataException($"{path}: line {i + 1}: field 'samples' = '{f[0]}', expected an integer");
            rows[samples] = new EvaluationResult(samples, Num(1, "seconds"), Num(2, "train_bound"), Num(3, "test_bound"));
        }
        return [.. rows.Values];
    }

    string OptionsPath => Path.Combine(Directory, OptionsFile);

    string Field(string key) => Fields.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"{OptionsPath}: field '{key}' is missing");

    T Parse<T>(string key, string expected, Func<string, (bool, T)> parse)
    {
        var (ok, value) = parse(Field(key));
        return ok ? value : throw new InvalidDataException($"{OptionsPath}: field '{key}' = '{Field(key)}', expected {expected}");
    }

    int Int(string key) => Parse(key, "an integer", s => (int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v), v));
    long Long(string key) => Parse(key, "an integer", s => (long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v), v));
    double Double(string key) => Parse(key, "a number", s => (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v), v));

    /// <summary>The value of <paramref name="key"/> as a non-negative integer; null where absent or not one.</summary>
    long? OptionalCount(string key) =>
        Fields.TryGetValue(key, out var s) && long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) && v >= 0 ? v : null;

    /// <summary>The learning algorithm.</summary>
    public TrainingAlgorithm Algorithm => Parse("algorithm", "aevb, wake-sleep or mcem", s => (TrainingAlgorithms.TryParse(s, out var a), a));
    /// <summary>The data set's description (<c>dataset</c>).</summary>
    public string Dataset => Field("dataset");
    /// <summary>The training images the run used: the first this many of its data set's.</summary>
    public int TrainImages => Int("train_images");

    /// <summary>The model's architecture.</summary>
    public VaeModelOptions Model => new()
    {
        InputDimension = Int("input"), HiddenUnits = Int("hidden"), LatentDimensions = Int("latent"),
        HiddenLayers = Fields.ContainsKey("hidden_layers") ? Int("hidden_layers") : 1,
        Likelihood = Parse("likelihood", "a DecoderLikelihood name", s => (Enum.TryParse<DecoderLikelihood>(s, out var l), l)),
        DoublePrecision = Parse("dtype", "float32 or float64", s => (s is "float32" or "float64", s == "float64")),
    };

    static readonly AevbOptions Defaults = new();

    bool Adam => Fields.TryGetValue("optimizer", out var o) && o == nameof(TrainingOptimizer.Adam);

    /// <summary>The learner's settings and seed.</summary>
    public AevbOptions Options => new()
    {
        // An importance-weighted run records its objective and encoder gradient instead of an SGVB estimator.
        Objective = Fields.ContainsKey("objective")
            ? Parse("objective", "Elbo or ImportanceWeighted", s => (Enum.TryParse<TrainingObjective>(s, out var o), o)) : TrainingObjective.Elbo,
        Estimator = Fields.ContainsKey("objective") ? SgvbEstimator.B : Parse("estimator", "A or B", s => (Enum.TryParse<SgvbEstimator>(s, out var e), e)),
        EncoderGradient = Fields.ContainsKey("encoder_gradient")
            ? Parse("encoder_gradient", "Reparameterised or DoublyReparameterised", s => (Enum.TryParse<EncoderGradient>(s, out var g), g)) : EncoderGradient.Reparameterised,
        SamplesPerDatapoint = Int("samples_per_datapoint"), BatchSize = Int("batch"), StepSize = Double("step_size"),
        // An Adam run records its optimiser and Adam's settings; Adagrad's runs (the paper's) its warm-up and regulariser.
        Optimizer = Adam ? TrainingOptimizer.Adam : TrainingOptimizer.Adagrad,
        WarmUp = Adam ? Defaults.WarmUp : Int("warm_up"), Regulariser = Adam ? Defaults.Regulariser : Double("regulariser"),
        AdamBeta1 = Adam ? Double("adam_beta1") : Defaults.AdamBeta1, AdamBeta2 = Adam ? Double("adam_beta2") : Defaults.AdamBeta2,
        AdamEpsilon = Adam ? Double("adam_epsilon") : Defaults.AdamEpsilon,
        // Absent in records written before Burda et al.'s code's variant existed: Kingma and Ba's.
        AdamVariant = Adam && Fields.ContainsKey("adam_variant")
            ? Parse("adam_variant", "KingmaBa or BurdaCode", s => (Enum.TryParse<AdamVariant>(s, out var v) && Enum.IsDefined(v), v)) : AdamVariant.KingmaBa,
        Schedule = Adam ? Parse("step_size_schedule", "Constant or Burda", s => (Enum.TryParse<StepSizeSchedule>(s, out var v), v)) : StepSizeSchedule.Constant,
        MinibatchOrder = Fields.ContainsKey("minibatch_order")
            ? Parse("minibatch_order", "WithReplacement or InOrder", s => (Enum.TryParse<MinibatchOrder>(s, out var v) && Enum.IsDefined(v), v)) : MinibatchOrder.WithReplacement,
        Initialization = Fields.ContainsKey("initialization")
            ? Parse("initialization", "PaperNormal or GlorotUniform", s => (Enum.TryParse<ParameterInitialization>(s, out var v) && Enum.IsDefined(v), v)) : ParameterInitialization.PaperNormal,
        DecoderOutputBias = Fields.ContainsKey("decoder_output_bias")
            ? Parse("decoder_output_bias", "Drawn or TrainingMeanLogit", s => (Enum.TryParse<DecoderOutputBias>(s, out var v) && Enum.IsDefined(v), v)) : DecoderOutputBias.Drawn,
        EncoderScaleHead = Fields.ContainsKey("encoder_scale_head")
            ? Parse("encoder_scale_head", "LogVariance or LogStandardDeviation", s => (Enum.TryParse<EncoderScaleHead>(s, out var v) && Enum.IsDefined(v), v)) : EncoderScaleHead.LogVariance,
        WakeSleepOrder = Fields.ContainsKey("wake_sleep_order")
            ? Parse("wake_sleep_order", "GradientsFirst or WakeUpdateFirst", s => (Enum.TryParse<WakeSleepOrder>(s, out var v) && Enum.IsDefined(v), v)) : WakeSleepOrder.GradientsFirst,
        WeightPrior = Parse("weight_prior", "True or False", s => (bool.TryParse(s, out bool b), b)),
        Binarize = Field("binarize") == "dynamic", MixedPrecision = Field("precision").StartsWith("bfloat16", StringComparison.Ordinal),
        // The path the run took (Trainer.GradientPath); bfloat16 multiplies are the precision field's.
        Gradient = Parse("gradient", "hand-derived, hand-derived with bfloat16 multiplies or one-pass float32, or autograd", s => s switch
        {
            "hand-derived" or "hand-derived, bfloat16 multiplies" => (true, GradientComputation.HandDerived),
            "hand-derived, one-pass float32" => (true, GradientComputation.OnePass),
            "autograd" => (true, GradientComputation.Autograd),
            _ => (false, GradientComputation.Auto),
        }),
        // Absent in records made before the variant existed: the shared encoder.
        WakeSleepVariant = Fields.ContainsKey("wake_sleep_variant")
            ? Parse("wake_sleep_variant", "SharedEncoder or Anglepy", s => (Enum.TryParse<WakeSleepVariant>(s, out var v), v)) : WakeSleepVariant.SharedEncoder,
        Seed = Long("seed"),
    };

    /// <summary>The budget and evaluation interval the last <see cref="Trainer.Fit"/> into the directory was asked for
    /// (<c>total_samples</c>, <c>evaluate_every</c>); null where not recorded.</summary>
    public RunSchedule Schedule => new(OptionalCount("total_samples"), OptionalCount("evaluate_every"));

    /// <summary>The libtorch thread count the run began with (<c>threads</c>; null where not recorded) and each change on
    /// resuming (<c>thread_changes</c>, "2 from 15000 samples; 1 from 30000 samples"): float32 sums round by thread
    /// count, so a run's trajectory is its seed and these.</summary>
    public RunThreads Threads
    {
        get
        {
            int? first = Fields.TryGetValue("threads", out var t) && int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) ? n : null;
            var changes = new List<ThreadChange>();
            foreach (string part in (Fields.GetValueOrDefault("thread_changes") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (part.Split(' ') is not [var c, "from", var s, "samples"] || !int.TryParse(c, NumberStyles.Integer, CultureInfo.InvariantCulture, out int threads)
                    || !long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long from))
                    throw new InvalidDataException($"{OptionsPath}: thread_changes part '{part}', expected \"T from S samples\"");
                changes.Add(new ThreadChange(threads, from));
            }
            return new RunThreads(first, changes);
        }
    }

    /// <summary>Whether the run's Appendix D evaluations estimated stuck chains again
    /// (<see cref="MarginalLikelihoodOptions.RetryStuckChains"/>; <c>appendix_d_stuck_chains = estimated again</c>);
    /// records made before the line was written kept them.</summary>
    public bool RetriesStuckChains => Fields.TryGetValue(StuckChainsField, out var v) && v == StuckChainsRetried;

    /// <summary>The CPU the run trained on (<c>cpu</c>), where recorded.</summary>
    public string? Cpu => Fields.GetValueOrDefault("cpu");
    /// <summary>MKL's kernel path the run trained with (<c>kernels</c>), where recorded.</summary>
    public string? Kernels => Fields.GetValueOrDefault("kernels");
    /// <summary>The build the run trained with (<c>commit</c>), where recorded.</summary>
    public string? Commit => Fields.GetValueOrDefault("commit");

    /// <summary>The training time recorded with the checkpoint of <paramref name="step"/>, or with an earlier one (a
    /// kill between the checkpoint and clock.txt: a lower bound); null when there is none, it belongs to a later step,
    /// or it cannot be read.</summary>
    internal static double? SecondsAtOrBefore(string directory, long step)
    {
        string path = Path.Combine(directory, ClockFile);
        string[] f;
        try { f = File.Exists(path) ? File.ReadAllText(path).Split(' ', StringSplitOptions.TrimEntries) : []; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        return f.Length == 2 && long.TryParse(f[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out long s) && s <= step
               && double.TryParse(f[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double t) && t >= 0 && double.IsFinite(t) ? t : null;
    }
}
