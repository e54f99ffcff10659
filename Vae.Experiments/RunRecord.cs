namespace Vae.Experiments;

/// <summary>A training run's record as committed. Moved to the <c>Vae</c> package as <see cref="Vae.RunRecord"/>, the
/// one reader of a run directory; this type forwards to it for one version.</summary>
[Obsolete("Use Vae.RunRecord (the run directory's record) and RunVerification.RecordedEstimator, TrainEvaluationLimit and RecordedCpu (the experiment's settings); removed in the next version.")]
public sealed class RunRecord
{
    RunRecord(Vae.RunRecord record) => Record = record;

    internal Vae.RunRecord Record { get; }

    /// <summary>Reads the record in <paramref name="directory"/> (<see cref="Vae.RunRecord.Read"/>); a record without
    /// evaluations is an <see cref="InvalidDataException"/>, as before.</summary>
    public static RunRecord Read(string directory)
    {
        var record = Vae.RunRecord.Read(directory);
        if (record.Evaluations.Count == 0) throw new InvalidDataException($"{Path.Combine(directory, "metrics.csv")}: no evaluations recorded");
        return new RunRecord(record);
    }

    /// <summary>The run directory.</summary>
    public string Directory => Record.Directory;
    /// <summary>Each <c>key = value</c> line of <c>options.txt</c>.</summary>
    public IReadOnlyDictionary<string, string> Fields => Record.Fields;
    /// <summary>The recorded evaluations, in order of samples.</summary>
    public IReadOnlyList<EvaluationResult> Evaluations => Record.Evaluations;
    /// <summary><see cref="RunVerification.RecordedCpu"/>.</summary>
    public string? RecordedCpu => RunVerification.RecordedCpu(Record);
    /// <summary><see cref="Vae.RunRecord.Kernels"/>.</summary>
    public string? RecordedKernels => Record.Kernels;
    /// <summary><see cref="Vae.RunRecord.Algorithm"/>.</summary>
    public TrainingAlgorithm Algorithm => Record.Algorithm;
    /// <summary><see cref="Vae.RunRecord.TrainImages"/>.</summary>
    public int TrainImages => Record.TrainImages;
    /// <summary>The thread count the run began with (<see cref="Vae.RunRecord.Threads"/>).</summary>
    public int Threads => Record.Threads.First ?? throw new InvalidDataException($"{Path.Combine(Directory, "options.txt")}: field 'threads' is missing");
    /// <summary><see cref="Vae.RunRecord.Model"/>.</summary>
    public VaeModelOptions Model => Record.Model;
    /// <summary><see cref="Vae.RunRecord.Options"/>.</summary>
    public AevbOptions Options => Record.Options;
    /// <summary><see cref="RunVerification.RecordedEstimator"/>.</summary>
    public (MarginalLikelihoodOptions Options, int Points)? Estimator => RunVerification.RecordedEstimator(Record);
    /// <summary><see cref="Vae.RunRecord.RetriesStuckChains"/>.</summary>
    public bool RetriesStuckChains => Record.RetriesStuckChains;
    /// <summary><see cref="RunVerification.TrainEvaluationLimit"/>.</summary>
    public int? TrainEvaluationLimit => RunVerification.TrainEvaluationLimit(Record);
}
