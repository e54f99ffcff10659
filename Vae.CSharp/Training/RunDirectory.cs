using System.Globalization;
using System.Text;
using Vae.Data;

namespace Vae;

/// <summary>A training run's directory, held under an exclusive lock while a run writes to it.</summary>
sealed class RunDirectory : IDisposable
{
    readonly FileStream _lock;

    RunDirectory(string path, FileStream lockFile) { Path = path; _lock = lockFile; }

    public string Path { get; }
    public string CheckpointPath => System.IO.Path.Combine(Path, Trainer.CheckpointFileName);

    /// <summary>Writes the run's checkpoint atomically, then the training time it was taken at (clock.txt: step and
    /// seconds; beside the checkpoint, not in it, so that equal runs write equal checkpoints). A checkpoint in the old
    /// format, from which the run may have resumed, is removed once the new one is in place.</summary>
    public void SaveCheckpoint(Vae.Core.CheckpointContents contents, long step, double seconds)
    {
        Vae.Core.Checkpoint.save(CheckpointPath, contents);
        File.Delete(System.IO.Path.Combine(Path, Trainer.LegacyCheckpointFileName));
        Vae.Core.Files.writeAtomically(ClockPath, Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{step} {seconds:R}\n")));
    }

    string ClockPath => System.IO.Path.Combine(Path, RunRecord.ClockFile);

    /// <summary>The training time recorded with the checkpoint of <paramref name="step"/> (<see cref="RunRecord"/>'s).</summary>
    public double? SecondsAtOrBefore(long step) => RunRecord.SecondsAtOrBefore(Path, step);
    string MetricsPath => System.IO.Path.Combine(Path, RunRecord.MetricsFile);

    /// <summary>Why a directory could not be made at <paramref name="path"/>: an ancestor that is not a directory, a
    /// permission, or the system's own reason.</summary>
    static string WhyNot(string path, Exception e)
    {
        string? dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        while (dir is not null && !Directory.Exists(dir) && !File.Exists(dir)) dir = System.IO.Path.GetDirectoryName(dir);
        if (dir is not null && File.Exists(dir)) return $"{dir} is not a directory";
        return e is UnauthorizedAccessException ? $"no permission to write in {dir}" : e.Message;
    }

    /// <summary>Opens (creating) the directory and takes its lock; a second run into it is refused.</summary>
    public static RunDirectory Open(string path)
    {
        try { Directory.CreateDirectory(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{path}: cannot create the run directory: {WhyNot(path, e)}", e);
        }
        string lockPath = System.IO.Path.Combine(path, ".lock");
        try
        {
            var stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            return new RunDirectory(path, stream);
        }
        catch (IOException e)
        {
            throw new IOException($"{path}: another training run is using this run directory (its lock {lockPath} is held)", e);
        }
    }

    public void WriteOptions(Trainer trainer, ImageData train, TrainingOptions options)
    {
        // A resumed run keeps the thread count it began with; a different count from here on is recorded as a change.
        int threadsNow = TorchRuntime.Threads;
        var recorded = trainer.SamplesSeen > 0 ? RunRecord.TryRead(Path)?.Threads ?? new RunThreads(null, []) : new RunThreads(null, []);
        int threadsBegun = recorded.First ?? threadsNow;
        var changes = recorded.Changes.Where(c => c.FromSamples < trainer.SamplesSeen).ToList();
        if ((changes.Count > 0 ? changes[^1].Threads : threadsBegun) != threadsNow) changes.Add(new ThreadChange(threadsNow, trainer.SamplesSeen));
        var m = trainer.ModelOptions;
        var a = trainer.Options;
        (string Key, object Value)[] lines =
        [
            ("algorithm", trainer.Algorithm.Name()), ("dataset", trainer.Dataset), ("train_images", train.Count), ("test_images", options.TestData?.Count ?? 0),
            ("input", m.InputDimension), ("hidden", m.HiddenUnits),
            // Written for deeper networks only: the paper's records keep their lines.
            .. m.HiddenLayers != 1 ? [("hidden_layers", (object)m.HiddenLayers)] : Array.Empty<(string, object)>(),
            ("latent", m.LatentDimensions), ("likelihood", m.Likelihood),
            ("dtype", m.DoublePrecision ? "float64" : "float32"),
            .. a.Objective == TrainingObjective.ImportanceWeighted
                ? new (string, object)[] { ("objective", a.Objective), ("encoder_gradient", a.EncoderGradient) } : [("estimator", a.Estimator)],
            ("samples_per_datapoint", a.SamplesPerDatapoint),
            ("batch", a.BatchSize),
            // Adagrad's lines as the paper's runs have always had them; Adam's under a line naming the optimiser.
            .. a.Optimizer == TrainingOptimizer.Adam
                ? new (string, object)[] { ("optimizer", a.Optimizer), ("step_size", a.StepSize), ("adam_beta1", a.AdamBeta1), ("adam_beta2", a.AdamBeta2),
                                           ("adam_epsilon", a.AdamEpsilon), ("step_size_schedule", a.Schedule), ("adam_variant", a.AdamVariant) }
                : [("step_size", a.StepSize), ("warm_up", a.WarmUp), ("regulariser", a.Regulariser)],
            ("weight_prior", a.WeightPrior), ("binarize", a.Binarize ? "dynamic" : "none (grey levels)"),
            ("precision", a.MixedPrecision ? "bfloat16 matrix multiplies, float32 weights" : "float32"), ("gradient", trainer.GradientPath),
            .. trainer.Algorithm == TrainingAlgorithm.WakeSleep ? [("wake_sleep_variant", (object)a.WakeSleepVariant)] : Array.Empty<(string, object)>(),
            // In-order minibatches only, so that the paper's records keep their lines.
            .. a.MinibatchOrder == MinibatchOrder.InOrder ? [("minibatch_order", (object)a.MinibatchOrder)] : Array.Empty<(string, object)>(),
            // Burda et al.'s code's initialisation, likewise only when chosen.
            .. a.Initialization != ParameterInitialization.PaperNormal ? [("initialization", (object)a.Initialization)] : Array.Empty<(string, object)>(),
            .. a.DecoderOutputBias != DecoderOutputBias.Drawn ? [("decoder_output_bias", (object)a.DecoderOutputBias)] : Array.Empty<(string, object)>(),
            .. a.EncoderScaleHead != EncoderScaleHead.LogVariance ? [("encoder_scale_head", (object)a.EncoderScaleHead)] : Array.Empty<(string, object)>(),
            .. a.WakeSleepOrder != WakeSleepOrder.GradientsFirst ? [("wake_sleep_order", (object)a.WakeSleepOrder)] : Array.Empty<(string, object)>(),
            .. trainer.Model.Standardization is { } st
                ? [("standardize", (object)string.Create(CultureInfo.InvariantCulture, $"per feature, fitted on the training set (sum of log scales {st.LogScaleSum:R})"))]
                : Array.Empty<(string, object)>(),
            ("seed", a.Seed),
            // Runs whose evaluations are Appendix D's: how its stuck chains were treated (absent in older records).
            .. (options.Estimator?.Method ?? (trainer.Algorithm == TrainingAlgorithm.MonteCarloEm ? MarginalLikelihoodMethod.HmcMarginal : (MarginalLikelihoodMethod?)null)) == MarginalLikelihoodMethod.HmcMarginal
                ? [(RunRecord.StuckChainsField, (object)((options.Estimator?.RetryStuckChains ?? true) ? RunRecord.StuckChainsRetried : RunRecord.StuckChainsKept))] : Array.Empty<(string, object)>(),
            ("total_samples", options.TotalSamples), ("evaluate_every", options.EvaluateEvery), ("threads", threadsBegun),
            .. changes.Count > 0
                ? [("thread_changes", (object)string.Join("; ", changes.Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.Threads} from {c.FromSamples} samples"))))]
                : Array.Empty<(string, object)>(),
            ("cpu", MachineFacts.Current().Cpu), ("kernels", NativeTuning.KernelPath),
            ("commit", BuildInfo.Commit ?? "unknown"),
            .. (options.CheckpointFields ?? new Dictionary<string, string>()).Select(kv => (kv.Key, (object)kv.Value)),
        ];
        var text = new StringBuilder();
        foreach (var (key, value) in lines) text.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{key} = {value}"));
        Vae.Core.Files.writeAtomically(System.IO.Path.Combine(Path, RunRecord.OptionsFile), Encoding.UTF8.GetBytes(text.ToString()));
    }

    /// <summary>Cuts metrics.csv back to the rows at or before <paramref name="samples"/> (the checkpoint's), atomically,
    /// so that a run resumed after a lost segment (a checkpoint write that failed, a crash between an evaluation and
    /// its checkpoint) records only what its parameters went through. Returns the seconds of the last row kept (0 when
    /// none), below which the resumed run's clock does not start.</summary>
    public double CutMetricsTo(long samples)
    {
        if (!File.Exists(MetricsPath)) return 0;
        var lines = File.ReadAllLines(MetricsPath);
        if (lines.Length == 0) { File.Delete(MetricsPath); return 0; } // AppendMetrics writes the header again
        var kept = new List<string> { lines[0] };
        double seconds = 0;
        for (int i = 1; i < lines.Length; i++)
        {
            var f = lines[i].Split(',');
            if (!long.TryParse(f[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out long s))
                throw new InvalidDataException($"{MetricsPath}: line {i + 1}: field 'samples' = '{f[0]}', expected an integer");
            if (s > samples) continue;
            kept.Add(lines[i]);
            if (f.Length > 1 && double.TryParse(f[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double t)) seconds = t;
        }
        if (kept.Count < lines.Length)
            Vae.Core.Files.writeAtomically(MetricsPath, Encoding.UTF8.GetBytes(string.Concat(kept.Select(l => l + "\n"))));
        return seconds;
    }

    public void AppendMetrics(EvaluationResult r)
    {
        bool exists = File.Exists(MetricsPath);
        using var w = new StreamWriter(MetricsPath, append: true);
        if (!exists) w.WriteLine("samples,seconds,train_bound,test_bound");
        w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.SamplesSeen},{r.Seconds:F1},{r.TrainBound:F4},{(double.IsNaN(r.TestBound) ? "" : r.TestBound.ToString("F4", CultureInfo.InvariantCulture))}"));
    }

    public void Dispose() => _lock.Dispose();
}
