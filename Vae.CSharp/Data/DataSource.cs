using System.Globalization;

namespace Vae.Data;

/// <summary>The data sets a run can name: the paper's two, binarized MNIST, and a user's own files.</summary>
public enum DataSetKind
{
    /// <summary>The paper's MNIST: the first 50,000 training images as grey levels, the official test set
    /// (<see cref="DataSets.MnistPaper"/>).</summary>
    Mnist,
    /// <summary>Frey Face with the paper's Gaussian decoder (<see cref="DataSets.FreyFace"/>).</summary>
    FreyFace,
    /// <summary>Binarized MNIST, whose bounds are on true log-likelihoods (<see cref="DataSets.BinarizedMnist"/>).</summary>
    BinarizedMnist,
    /// <summary>A directory of IDX files (<see cref="DataSets.FromIdxDirectory"/>).</summary>
    Idx,
    /// <summary>A NumPy <c>.npy</c> file (<see cref="DataSets.FromNpy"/>).</summary>
    Npy,
}

/// <summary>A data set named so that it can be loaded again: what a run trains on, recorded in its checkpoint so that
/// resuming, evaluating and scoring reload the same images, with the paper's model for it (section 5: 500 hidden units
/// for MNIST, 200 for Frey Face).</summary>
/// <param name="Kind">Which data set.</param>
/// <param name="Path">The directory (<see cref="DataSetKind.Idx"/>) or file (<see cref="DataSetKind.Npy"/>); null for the others.</param>
/// <param name="TrainLimit">Train on the first this many training images only; null: all.</param>
public sealed record DataSource(DataSetKind Kind, string? Path = null, int? TrainLimit = null)
{
    /// <summary>The names <see cref="Parse"/> accepts, in <see cref="DataSetKind"/>'s order.</summary>
    public static IReadOnlyList<string> Names { get; } = ["mnist", "frey-face", "binarized-mnist", "idx", "npy"];

    /// <summary>"mnist", "frey-face", "binarized-mnist", "idx" or "npy".</summary>
    public string Name => Names[(int)Kind];

    /// <summary>The data set a name of <see cref="Names"/> names, with its path where it needs one; an unknown name, or
    /// a missing path, is an <see cref="ArgumentException"/> saying what was expected.</summary>
    public static DataSource Parse(string name, string? path = null, int? trainLimit = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        int i = Names.ToList().IndexOf(name);
        if (i < 0) throw new ArgumentException($"data set '{name}': expected one of {string.Join(", ", Names)}", nameof(name));
        var kind = (DataSetKind)i;
        if (kind is DataSetKind.Idx or DataSetKind.Npy && path is null)
            throw new ArgumentException($"data set {name}: needs the path of its {(kind == DataSetKind.Idx ? "directory of IDX files" : ".npy file")}", nameof(path));
        if (trainLimit is < 1) throw new ArgumentOutOfRangeException(nameof(trainLimit), trainLimit, "training images: expected at least 1");
        return new DataSource(kind, kind is DataSetKind.Idx or DataSetKind.Npy ? path : null, trainLimit);
    }

    /// <summary>Loads the data set (fetching the paper's into the cache when needed), cut to <see cref="TrainLimit"/>
    /// training images; a limit beyond the data set's is an <see cref="ArgumentException"/>.</summary>
    public DataSet Load(DataSetOptions? options = null)
    {
        var set = Kind switch
        {
            DataSetKind.Mnist => DataSets.MnistPaper(options),
            DataSetKind.FreyFace => DataSets.FreyFace(options),
            DataSetKind.BinarizedMnist => DataSets.BinarizedMnist(options),
            DataSetKind.Idx => DataSets.FromIdxDirectory(Path ?? throw new InvalidOperationException("an idx data source needs its directory")),
            DataSetKind.Npy => DataSets.FromNpy(Path ?? throw new InvalidOperationException("an npy data source needs its file")),
            _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "expected a DataSetKind value"),
        };
        if (TrainLimit is not int n) return set;
        if (n > set.Train.Count) throw new ArgumentException($"{n} exceeds the {set.Train.Count} training images of {Name}", nameof(TrainLimit));
        return set.WithFirstTrainingImages(n);
    }

    /// <summary>Whether the data set is trained on a fresh binary draw per minibatch (<see cref="AevbOptions.Binarize"/>):
    /// binarized MNIST, whose test set is binary.</summary>
    public bool TrainsBinarized => Kind == DataSetKind.BinarizedMnist;

    /// <summary>Whether the data set comes with the paper's decoder (MNIST's Bernoulli, Frey Face's Gaussian); a user's
    /// own files choose theirs.</summary>
    public bool HasPaperLikelihood => Kind is not (DataSetKind.Idx or DataSetKind.Npy);

    /// <summary>The model section 5 trains on this data set: Frey Face J = 10, 200 hidden units and the Gaussian decoder
    /// with sigmoid means (560 inputs); the others J = 20, 500 hidden units and the Bernoulli decoder (784 inputs).
    /// <paramref name="inputDimension"/> replaces the input size, as a user's own files need (known once loaded).</summary>
    public VaeModelOptions PaperModel(int? inputDimension = null)
    {
        var paper = Kind == DataSetKind.FreyFace ? VaeModelOptions.FreyFace() : new VaeModelOptions();
        return new VaeModelOptions
        {
            InputDimension = inputDimension ?? paper.InputDimension, HiddenUnits = paper.HiddenUnits, LatentDimensions = paper.LatentDimensions,
            Likelihood = paper.Likelihood,
        };
    }

    /// <summary>The fields a run's checkpoint keeps (as <c>run.dataset</c>, <c>run.data-dir</c>, <c>run.data-file</c>,
    /// <c>run.ntrain</c>; <see cref="TrainingOptions.CheckpointFields"/>) so that <see cref="FromCheckpointSettings"/>
    /// finds the data again.</summary>
    public IReadOnlyDictionary<string, string> CheckpointFields
    {
        get
        {
            var f = new Dictionary<string, string> { ["dataset"] = Name };
            if (Kind == DataSetKind.Idx) f["data-dir"] = System.IO.Path.GetFullPath(Path!);
            if (Kind == DataSetKind.Npy) f["data-file"] = System.IO.Path.GetFullPath(Path!);
            if (TrainLimit is int n) f["ntrain"] = n.ToString(CultureInfo.InvariantCulture);
            return f;
        }
    }

    /// <summary>The data a checkpoint was trained on, from its settings (<see cref="VariationalAutoEncoder.ReadSettings"/>):
    /// the <c>run.*</c> fields <see cref="CheckpointFields"/> wrote, else, for runs of the experiments or the façade, the
    /// data set its description names (Frey Face, else MNIST).</summary>
    public static DataSource FromCheckpointSettings(IReadOnlyDictionary<string, string> settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        string name = settings.GetValueOrDefault("run.dataset")
                      ?? (settings.GetValueOrDefault("dataset", "").StartsWith("Frey Face", StringComparison.Ordinal) ? "frey-face" : "mnist");
        int? limit = settings.TryGetValue("run.ntrain", out var n)
            ? int.TryParse(n, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 1 ? v
              : throw new InvalidDataException($"checkpoint field 'run.ntrain' = '{n}', expected a positive integer")
            : null;
        try { return Parse(name, settings.GetValueOrDefault("run.data-dir") ?? settings.GetValueOrDefault("run.data-file"), limit); }
        catch (ArgumentException e) { throw new InvalidDataException($"checkpoint field 'run.dataset': {e.Message}", e); }
    }
}
