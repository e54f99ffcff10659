using System.Globalization;
using System.Text.Json;
using Vae.Data;

namespace Vae.Experiments;

/// <summary>A training run's record as committed: its <c>options.txt</c> (the settings and seed) and <c>metrics.csv</c>
/// (the evaluations), read without its checkpoint.</summary>
public sealed class RunRecord
{
    RunRecord(string directory, IReadOnlyDictionary<string, string> fields, IReadOnlyList<EvaluationResult> evaluations, string? recordedCpu)
    {
        Directory = directory; Fields = fields; Evaluations = evaluations; RecordedCpu = recordedCpu;
        RecordedKernels = fields.TryGetValue("kernels", out var k) ? k : null;
    }

    /// <summary>The run directory.</summary>
    public string Directory { get; }
    /// <summary>Each <c>key = value</c> line of <c>options.txt</c> (the first, where a key repeats).</summary>
    public IReadOnlyDictionary<string, string> Fields { get; }
    /// <summary>The recorded evaluations, in order of samples.</summary>
    public IReadOnlyList<EvaluationResult> Evaluations { get; }
    /// <summary>The CPU the run was trained on: its <c>options.txt</c>'s <c>cpu</c> (runs from this version on), else
    /// the machine the experiment's <c>results.json</c> names (the one that collected the results).</summary>
    public string? RecordedCpu { get; }
    /// <summary>MKL's kernel path the run trained with (<c>options.txt</c>'s <c>kernels</c>), where recorded.</summary>
    public string? RecordedKernels { get; }

    /// <summary>Reads the record in <paramref name="directory"/>; a missing file or a field that cannot be read is an
    /// <see cref="InvalidDataException"/> naming the file and the field.</summary>
    public static RunRecord Read(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        string options = Path.Combine(directory, "options.txt"), metrics = Path.Combine(directory, "metrics.csv");
        if (!File.Exists(options)) throw new InvalidDataException($"{options}: no such file (a run directory records its settings there)");
        var fields = new Dictionary<string, string>();
        foreach (var line in File.ReadLines(options))
            if (line.Split(" = ", 2) is [var key, var value]) fields.TryAdd(key.Trim(), value.Trim());
        var evaluations = ExperimentRuns.ReadMetrics(metrics);
        if (evaluations.Count == 0) throw new InvalidDataException($"{metrics}: no evaluations recorded");
        string? cpu = fields.TryGetValue("cpu", out var recorded) ? recorded : null;
        string results = ExperimentResultsFile(directory);
        if (cpu is null && File.Exists(results))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(results));
            if (doc.RootElement.TryGetProperty("machine", out var m) && m.TryGetProperty("cpu", out var c)) cpu = c.GetString();
        }
        return new RunRecord(directory, fields, evaluations, cpu);
    }

    /// <summary>The results file of the experiment a run directory belongs to: <c>results.json</c> beside the run
    /// directories, or the experiment directory's name with <c>.json</c> (as <c>docs/results/figure3-ntrain1000.json</c>
    /// sits beside <c>docs/results/figure3-ntrain1000/</c>); the first of these that exists, else the first.</summary>
    static string ExperimentResultsFile(string directory)
    {
        string experiment = Path.GetDirectoryName(Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar))!;
        string inside = Path.Combine(experiment, "results.json"), beside = experiment.TrimEnd(Path.DirectorySeparatorChar) + ".json";
        return !File.Exists(inside) && File.Exists(beside) ? beside : inside;
    }

    string Field(string key) => Fields.TryGetValue(key, out var v) ? v
        : throw new InvalidDataException($"{Path.Combine(Directory, "options.txt")}: field '{key}' is missing");

    T Parse<T>(string key, string expected, Func<string, (bool, T)> parse)
    {
        var (ok, value) = parse(Field(key));
        return ok ? value : throw new InvalidDataException($"{Path.Combine(Directory, "options.txt")}: field '{key}' = '{Field(key)}', expected {expected}");
    }

    int Int(string key) => Parse(key, "an integer", s => (int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v), v));
    long Long(string key) => Parse(key, "an integer", s => (long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v), v));
    double Double(string key) => Parse(key, "a number", s => (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v), v));

    /// <summary>The learning algorithm.</summary>
    public TrainingAlgorithm Algorithm => Parse("algorithm", "aevb, wake-sleep or mcem", s => (TrainingAlgorithms.TryParse(s, out var a), a));
    /// <summary>The training images the run used: the first this many of its data set's.</summary>
    public int TrainImages => Int("train_images");
    /// <summary>libtorch threads the run trained on.</summary>
    public int Threads => Int("threads");

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
        Schedule = Adam ? Parse("step_size_schedule", "Constant or Burda", s => (Enum.TryParse<StepSizeSchedule>(s, out var v), v)) : StepSizeSchedule.Constant,
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

    /// <summary>The estimator of the evaluations and the first images it was applied to: Appendix D as the experiment's
    /// <c>results.json</c> states it (Figure 3: "Appendix D on the first N training and test images: P posterior samples,
    /// L leapfrog steps, burn-in B"); null where it names none or another (Figure 2's "B (AEVB)"), where the evaluations are the bound (or, for Monte Carlo
    /// EM, Appendix D with its defaults on the first 100 images, as <c>vae train</c> evaluates it).</summary>
    public (MarginalLikelihoodOptions Options, int Points)? Estimator
    {
        get
        {
            string results = ExperimentResultsFile(Directory);
            if (!File.Exists(results)) return null;
            using var doc = JsonDocument.Parse(File.ReadAllText(results));
            if (!doc.RootElement.TryGetProperty("settings", out var s) || !s.TryGetProperty("estimator", out var e)) return null;
            string text = e.GetString() ?? "";
            if (!text.StartsWith("Appendix D", StringComparison.Ordinal)) return null; // Figure 2: the SGVB estimator of the bound
            var m = System.Text.RegularExpressions.Regex.Match(text,
                @"^Appendix D on the first (\d+) training and test images: (\d+) posterior samples, (\d+) leapfrog steps, burn-in (\d+)$");
            if (!m.Success) throw new InvalidDataException($"{results}: settings.estimator = '{e.GetString()}', expected \"Appendix D on the first N training and test images: P posterior samples, L leapfrog steps, burn-in B\"");
            int At(int i) => int.Parse(m.Groups[i].Value, CultureInfo.InvariantCulture);
            return (new MarginalLikelihoodOptions
            {
                Method = MarginalLikelihoodMethod.HmcMarginal, PosteriorSamples = At(2), LeapfrogSteps = At(3), BurnIn = At(4), RetryStuckChains = RetriesStuckChains,
            }, At(1));
        }
    }

    /// <summary>Whether the run's Appendix D evaluations estimated stuck chains again
    /// (<see cref="MarginalLikelihoodOptions.RetryStuckChains"/>): options.txt's <c>appendix_d_stuck_chains</c>; records
    /// made before it was written kept them.</summary>
    public bool RetriesStuckChains => Fields.TryGetValue("appendix_d_stuck_chains", out var v) && v == "estimated again";

    /// <summary>The training images the training bound was evaluated on: the experiment's <c>train_evaluation</c>
    /// setting in its <c>results.json</c> ("first N training images"), else every training image.</summary>
    public int? TrainEvaluationLimit
    {
        get
        {
            string results = ExperimentResultsFile(Directory);
            if (!File.Exists(results)) return null;
            using var doc = JsonDocument.Parse(File.ReadAllText(results));
            if (!doc.RootElement.TryGetProperty("settings", out var s) || !s.TryGetProperty("train_evaluation", out var t)) return null;
            var words = (t.GetString() ?? "").Split(' ');
            return words is ["first", var n, ..] && int.TryParse(n, NumberStyles.Integer, CultureInfo.InvariantCulture, out int limit) ? limit : null;
        }
    }
}

/// <summary>One recorded evaluation beside its replay. <see cref="Identical"/> compares the values as
/// <c>metrics.csv</c> prints them (four decimals), the record's precision.</summary>
public sealed record EvaluationComparison(long SamplesSeen, double RecordedTrain, double RecordedTest, double ReplayedTrain, double ReplayedTest)
{
    static string Printed(double v) => v.ToString("F4", CultureInfo.InvariantCulture);
    /// <summary>Whether both bounds print as recorded.</summary>
    public bool Identical => Printed(RecordedTrain) == Printed(ReplayedTrain) && Printed(RecordedTest) == Printed(ReplayedTest);
    /// <summary>The larger of the two bounds' absolute differences (nats), the replay rounded as the record is.</summary>
    public double Difference => Math.Max(Math.Abs(RecordedTrain - Math.Round(ReplayedTrain, 4)), Math.Abs(RecordedTest - Math.Round(ReplayedTest, 4)));
}

/// <summary>The verdict of <see cref="RunVerification.Verify"/>.</summary>
/// <param name="Directory">The run directory.</param>
/// <param name="Evaluations">Each replayed evaluation beside the record.</param>
/// <param name="RecordedCpu">The CPU of the record, where known.</param>
/// <param name="ThisCpu">This machine's CPU.</param>
/// <param name="Kernels">MKL's kernel path on this machine, as <c>vae version</c> reports it.</param>
/// <param name="RecordedKernels">MKL's kernel path of the record, where recorded.</param>
public sealed record VerificationReport(string Directory, IReadOnlyList<EvaluationComparison> Evaluations, string? RecordedCpu, string ThisCpu, string Kernels,
                                        string? RecordedKernels = null)
{
    /// <summary>Whether every replayed evaluation prints as recorded.</summary>
    public bool Identical => Evaluations.All(e => e.Identical);
    /// <summary>The largest difference over the evaluations (nats).</summary>
    public double LargestDifference => Evaluations.Count == 0 ? 0 : Evaluations.Max(e => e.Difference);

    /// <summary>One line: bit-identical (to the record's digits), or the largest difference and where the machines differ.</summary>
    public string Verdict
    {
        get
        {
            if (Identical) return $"identical: {Evaluations.Count} evaluations replayed to the record's four decimals";
            var first = Evaluations.First(e => !e.Identical);
            string machines = RecordedCpu is null ? $"the record names no machine; this one is {ThisCpu} ({Kernels})"
                : RecordedKernels is not null && RecordedKernels != Kernels
                    ? $"recorded on {RecordedCpu} ({RecordedKernels}), replayed on {ThisCpu} ({Kernels}): another kernel path rounds float32 differently"
                : RecordedCpu == ThisCpu && RecordedKernels is null
                    ? $"the record names the CPU model of this machine ({ThisCpu}, {Kernels}) but not its kernel path, which may have differed (results.json names the machine that collected the results)"
                : RecordedCpu == ThisCpu ? $"the same CPU model and kernel path as the record ({ThisCpu}, {Kernels}): a difference on the same kernel path is a change in what is computed"
                : $"recorded on {RecordedCpu}, replayed on {ThisCpu} ({Kernels}): another kernel path rounds float32 differently";
            return string.Create(CultureInfo.InvariantCulture,
                $"different: first at {first.SamplesSeen:N0} samples, largest difference {LargestDifference:G4} nats over {Evaluations.Count} evaluations; {machines}");
        }
    }
}

/// <summary>Replays a recorded run from its settings and seed and compares each evaluation with its record: how anyone
/// checks that a committed result comes from the code and settings it names.</summary>
public static class RunVerification
{
    /// <summary>Trains the run of <paramref name="record"/> again on <paramref name="data"/> (its first
    /// <see cref="RunRecord.TrainImages"/> training images) up to its <paramref name="evaluations"/>-th evaluation
    /// (all when null), evaluating at the recorded sample counts with the recorded estimator (<see cref="RunRecord.Estimator"/>),
    /// on the recorded thread count, and compares. AEVB, wake-sleep and Monte Carlo EM runs.</summary>
    public static VerificationReport Verify(RunRecord record, DataSet data, int? evaluations = null, IProgress<EvaluationComparison>? progress = null,
                                            CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(data);
        if (evaluations is < 1) throw new ArgumentOutOfRangeException(nameof(evaluations), evaluations, "evaluations: expected at least 1");
        var algorithm = record.Algorithm;
        var estimator = record.Estimator;
        var recorded = record.Evaluations.Take(evaluations ?? int.MaxValue).ToList();
        var train = record.TrainImages < data.Train.Count ? data.Train.First(record.TrainImages) : data.Train;
        var model = record.Model;
        if (train.Dimension != model.InputDimension)
            throw new InvalidDataException($"{record.Directory}: options.txt records input = {model.InputDimension}, the data set has {train.Dimension} values per image");
        using Trainer trainer = ExperimentRuns.Create(algorithm, model, record.Options, data.Description);
        int threads = TorchRuntime.Threads;
        // The run's segments, each on its recorded thread count: the count it began with, then each change on resuming.
        long end = recorded[^1].SamplesSeen;
        var changes = Trainer.RecordedThreads(record.Directory).Changes.Where(c => c.FromSamples < end).ToList();
        var segments = changes.Select((c, i) => (Threads: i == 0 ? record.Threads : changes[i - 1].Threads, Until: c.FromSamples))
            .Append((Threads: changes.Count > 0 ? changes[^1].Threads : record.Threads, Until: end)).ToList();
        var compared = new List<EvaluationComparison>();
        try
        {
            foreach (var segment in segments)
            {
                TorchRuntime.Threads = segment.Threads;
                trainer.Fit(train, new TrainingOptions
                {
                    TotalSamples = segment.Until, EvaluateAt = [.. recorded.Select(e => e.SamplesSeen)], TestData = data.Test,
                    TrainEvaluationLimit = record.TrainEvaluationLimit, TensorBoard = false, CheckpointInterval = null,
                    // Monte Carlo EM's own evaluations (vae train's): Appendix D's defaults, stuck chains as recorded.
                    Estimator = estimator?.Options ?? (algorithm == TrainingAlgorithm.MonteCarloEm
                        ? new MarginalLikelihoodOptions { Method = MarginalLikelihoodMethod.HmcMarginal, RetryStuckChains = record.RetriesStuckChains } : null),
                    MarginalLikelihoodPoints = estimator?.Points ?? new TrainingOptions().MarginalLikelihoodPoints,
                    Evaluated = e =>
                    {
                        var r = recorded.FirstOrDefault(x => x.SamplesSeen == e.SamplesSeen);
                        if (r is null || compared.Any(done => done.SamplesSeen == e.SamplesSeen)) return;
                        var c = new EvaluationComparison(e.SamplesSeen, r.TrainBound, r.TestBound, e.TrainBound, e.TestBound);
                        compared.Add(c);
                        progress?.Report(c);
                    },
                }, cancellationToken: cancellationToken);
            }
        }
        finally { TorchRuntime.Threads = threads; }
        return new VerificationReport(record.Directory, compared, record.RecordedCpu, MachineFacts.Current().Cpu, NativeTuning.KernelPath, record.RecordedKernels);
    }
}
