using System.CommandLine;
using Vae.Data;

namespace Vae.Cli;

/// <summary>The data set options shared by train and evaluate: --dataset, --data-dir, --data-file, --cache, --frey-face.</summary>
sealed record DataChoice(DataSource Source, string? Cache, string? FreyFace)
{
    public static readonly Option<string> DatasetOption = Opt.Choice("--dataset", "the paper's MNIST or Frey Face, binarized MNIST (true log-likelihoods: dynamic binarisation, the test set binarized once), or your own IDX files or .npy file", "mnist", [.. DataSource.Names]);
    public static readonly Option<string> DataDirOption = Opt.Text("--data-dir", "--dataset idx: the directory of the four IDX files", "DIR");
    public static readonly Option<string> DataFileOption = Opt.Text("--data-file", "--dataset npy: an .npy file of images in [0, 1]", "FILE");

    /// <summary>The data set options of train and sweep.</summary>
    public static readonly Option[] All = [DatasetOption, DataDirOption, DataFileOption, Common.Cache, Common.FreyFace];

    /// <summary>The data set's name ("mnist", "frey-face", ...).</summary>
    public string Dataset => Source.Name;

    /// <summary>One of the paper's data sets (or binarized MNIST), by name.</summary>
    public static DataChoice Named(string name, string? cache, string? freyFace = null, int? ntrain = null) => new(DataSource.Parse(name, null, ntrain), cache, freyFace);

    public static DataChoice From(Arguments a)
    {
        string name = a.Get(DatasetOption);
        if (name == "idx" && a.Get(DataDirOption) is null) throw new UsageException("--dataset idx needs --data-dir DIR");
        if (name == "npy" && a.Get(DataFileOption) is null) throw new UsageException("--dataset npy needs --data-file FILE");
        return new(DataSource.Parse(name, name == "idx" ? a.Get(DataDirOption) : a.Get(DataFileOption), (int?)a.Get(TrainVerb.NTrain)), a.Get(Common.Cache), a.Get(Common.FreyFace));
    }

    /// <summary>The data a checkpoint was trained on (<see cref="DataSource.FromCheckpointSettings"/>).</summary>
    public static DataChoice FromFields(IReadOnlyDictionary<string, string> fields, string? cache, string? freyFace) =>
        new(DataSource.FromCheckpointSettings(fields), cache, freyFace);

    public DataSet Load(TextWriter log)
    {
        var options = new DataSetOptions
        {
            CacheDirectory = Cache, FreyFaceSource = FreyFace,
            Progress = new ConsoleDownloadProgress(log), Log = line => log.WriteLine(line),
        };
        try { return Source.Load(options); }
        catch (ArgumentException e) when (e.ParamName == nameof(DataSource.TrainLimit)) { throw new UsageException($"--ntrain: {e.Message.Split(" (Parameter")[0]}"); }
    }
}
