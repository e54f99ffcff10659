using System.Globalization;
using System.Text.Json;
using Vae.Data;

namespace Vae.Experiments;

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

/// <summary>The verdict of <see cref="RunVerification.Verify(Vae.RunRecord, DataSet, int?, IProgress{EvaluationComparison}?, CancellationToken)"/>.</summary>
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
    /// <summary>The results file of the experiment a run directory belongs to: <c>results.json</c> beside the run
    /// directories, or the experiment directory's name with <c>.json</c> (as <c>docs/results/figure3-ntrain1000.json</c>
    /// sits beside <c>docs/results/figure3-ntrain1000/</c>); the first of these that exists, else the first.</summary>
    static string ExperimentResultsFile(string directory)
    {
        string experiment = Path.GetDirectoryName(Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar))!;
        string inside = Path.Combine(experiment, "results.json"), beside = experiment.TrimEnd(Path.DirectorySeparatorChar) + ".json";
        return !File.Exists(inside) && File.Exists(beside) ? beside : inside;
    }

    /// <summary>The experiment's results.json beside a run directory, parsed, or null where there is none.</summary>
    static JsonDocument? ExperimentResults(string directory)
    {
        string results = ExperimentResultsFile(directory);
        return File.Exists(results) ? JsonDocument.Parse(File.ReadAllText(results)) : null;
    }

    /// <summary>The CPU a run trained on: its <c>options.txt</c>'s <c>cpu</c> (runs from this version on), else the
    /// machine its experiment's <c>results.json</c> names (the one that collected the results).</summary>
    public static string? RecordedCpu(Vae.RunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (run.Cpu is not null) return run.Cpu;
        using var doc = ExperimentResults(run.Directory);
        return doc is not null && doc.RootElement.TryGetProperty("machine", out var m) && m.TryGetProperty("cpu", out var c) ? c.GetString() : null;
    }

    /// <summary>The estimator of a run's evaluations and the first images it was applied to: Appendix D as the
    /// experiment's <c>results.json</c> states it (Figure 3: "Appendix D on the first N training and test images: P
    /// posterior samples, L leapfrog steps, burn-in B"), stuck chains as the run recorded; null where it names none or
    /// another (Figure 2's "B (AEVB)"), where the evaluations are the bound (or, for Monte Carlo EM, Appendix D with its
    /// defaults on the first 100 images, as <c>vae train</c> evaluates it).</summary>
    public static (MarginalLikelihoodOptions Options, int Points)? RecordedEstimator(Vae.RunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        using var doc = ExperimentResults(run.Directory);
        if (doc is null || !doc.RootElement.TryGetProperty("settings", out var s) || !s.TryGetProperty("estimator", out var e)) return null;
        string text = e.GetString() ?? "";
        if (!text.StartsWith("Appendix D", StringComparison.Ordinal)) return null; // Figure 2: the SGVB estimator of the bound
        var m = System.Text.RegularExpressions.Regex.Match(text,
            @"^Appendix D on the first (\d+) training and test images: (\d+) posterior samples, (\d+) leapfrog steps, burn-in (\d+)$");
        if (!m.Success) throw new InvalidDataException($"{ExperimentResultsFile(run.Directory)}: settings.estimator = '{text}', expected \"Appendix D on the first N training and test images: P posterior samples, L leapfrog steps, burn-in B\"");
        int At(int i) => int.Parse(m.Groups[i].Value, CultureInfo.InvariantCulture);
        return (new MarginalLikelihoodOptions
        {
            Method = MarginalLikelihoodMethod.HmcMarginal, PosteriorSamples = At(2), LeapfrogSteps = At(3), BurnIn = At(4), RetryStuckChains = run.RetriesStuckChains,
        }, At(1));
    }

    /// <summary>The training images a run's training bound was evaluated on: the experiment's <c>train_evaluation</c>
    /// setting in its <c>results.json</c> ("first N training images"), else null (every training image).</summary>
    public static int? TrainEvaluationLimit(Vae.RunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        using var doc = ExperimentResults(run.Directory);
        if (doc is null || !doc.RootElement.TryGetProperty("settings", out var s) || !s.TryGetProperty("train_evaluation", out var t)) return null;
        var words = (t.GetString() ?? "").Split(' ');
        return words is ["first", var n, ..] && int.TryParse(n, NumberStyles.Integer, CultureInfo.InvariantCulture, out int limit) ? limit : null;
    }

    /// <summary>Replays a run recorded before <see cref="Vae.RunRecord"/> moved to the <c>Vae</c> package.</summary>
    [Obsolete("Read the record with Vae.RunRecord.Read and pass it to Verify(Vae.RunRecord, ...); removed in the next version.")]
    public static VerificationReport Verify(RunRecord record, DataSet data, int? evaluations = null, IProgress<EvaluationComparison>? progress = null,
                                            CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        return Verify(record.Record, data, evaluations, progress, cancellationToken);
    }

    /// <summary>Trains the run of <paramref name="record"/> again on <paramref name="data"/> (its first
    /// <see cref="Vae.RunRecord.TrainImages"/> training images) up to its <paramref name="evaluations"/>-th evaluation
    /// (all when null), evaluating at the recorded sample counts with the recorded estimator (<see cref="RecordedEstimator"/>),
    /// on the recorded thread counts, and compares. AEVB, wake-sleep and Monte Carlo EM runs; a record without
    /// evaluations is an <see cref="InvalidDataException"/>.</summary>
    public static VerificationReport Verify(Vae.RunRecord record, DataSet data, int? evaluations = null, IProgress<EvaluationComparison>? progress = null,
                                            CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(data);
        if (evaluations is < 1) throw new ArgumentOutOfRangeException(nameof(evaluations), evaluations, "evaluations: expected at least 1");
        var algorithm = record.Algorithm;
        var estimator = RecordedEstimator(record);
        if (record.Evaluations.Count == 0) throw new InvalidDataException($"{Path.Combine(record.Directory, "metrics.csv")}: no evaluations recorded");
        var recorded = record.Evaluations.Take(evaluations ?? int.MaxValue).ToList();
        var train = record.TrainImages < data.Train.Count ? data.Train.First(record.TrainImages) : data.Train;
        var model = record.Model;
        if (train.Dimension != model.InputDimension)
            throw new InvalidDataException($"{record.Directory}: options.txt records input = {model.InputDimension}, the data set has {train.Dimension} values per image");
        using Trainer trainer = ExperimentRuns.Create(algorithm, model, record.Options, data.Description);
        int threads = TorchRuntime.Threads;
        // The run's segments, each on its recorded thread count: the count it began with, then each change on resuming.
        long end = recorded[^1].SamplesSeen;
        var recordedThreads = record.Threads;
        int first = recordedThreads.First ?? throw new InvalidDataException($"{Path.Combine(record.Directory, "options.txt")}: field 'threads' is missing");
        var changes = recordedThreads.Changes.Where(c => c.FromSamples < end).ToList();
        var segments = changes.Select((c, i) => (Threads: i == 0 ? first : changes[i - 1].Threads, Until: c.FromSamples))
            .Append((Threads: changes.Count > 0 ? changes[^1].Threads : first, Until: end)).ToList();
        var compared = new List<EvaluationComparison>();
        try
        {
            foreach (var segment in segments)
            {
                TorchRuntime.Threads = segment.Threads;
                trainer.Fit(train, new TrainingOptions
                {
                    TotalSamples = segment.Until, EvaluateAt = [.. recorded.Select(e => e.SamplesSeen)], TestData = data.Test,
                    TrainEvaluationLimit = TrainEvaluationLimit(record), TensorBoard = false, CheckpointInterval = null,
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
        return new VerificationReport(record.Directory, compared, RecordedCpu(record), MachineFacts.Current().Cpu, NativeTuning.KernelPath, record.Kernels);
    }
}
