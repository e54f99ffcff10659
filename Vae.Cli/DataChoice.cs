using System.CommandLine;
using Vae.Data;

namespace Vae.Cli;

/// <summary>The data set options shared by train and evaluate: --dataset, --data-dir, --data-file, --cache, --frey-face.</summary>
sealed record DataChoice(string Dataset, string? DataDir, string? DataFile, string? Cache, string? FreyFace, int? NTrain = null)
{
    public static readonly Option<string> DatasetOption = Opt.Choice("--dataset", "the paper's MNIST or Frey Face, binarized MNIST (true log-likelihoods: dynamic binarisation, the test set binarized once), or your own IDX files or .npy file", "mnist", "mnist", "frey-face", "binarized-mnist", "idx", "npy");
    public static readonly Option<string> DataDirOption = Opt.Text("--data-dir", "--dataset idx: the directory of the four IDX files", "DIR");
    public static readonly Option<string> DataFileOption = Opt.Text("--data-file", "--dataset npy: an .npy file of images in [0, 1]", "FILE");

    /// <summary>The data set options of train and sweep.</summary>
    public static readonly Option[] All = [DatasetOption, DataDirOption, DataFileOption, Common.Cache, Common.FreyFace];

    public static DataChoice From(Arguments a)
    {
        int? ntrain = (int?)a.Get(TrainVerb.NTrain);
        var d = new DataChoice(a.Get(DatasetOption), a.Get(DataDirOption), a.Get(DataFileOption), a.Get(Common.Cache), a.Get(Common.FreyFace), ntrain);
        if (d.Dataset == "idx" && d.DataDir is null) throw new UsageException("--dataset idx needs --data-dir DIR");
        if (d.Dataset == "npy" && d.DataFile is null) throw new UsageException("--dataset npy needs --data-file FILE");
        return d;
    }

    /// <summary>The fields that let a resumed run or an evaluation reload the same data.</summary>
    public Dictionary<string, string> ToFields()
    {
        var f = new Dictionary<string, string> { ["dataset"] = Dataset };
        if (DataDir is not null) f["data-dir"] = Path.GetFullPath(DataDir);
        if (DataFile is not null) f["data-file"] = Path.GetFullPath(DataFile);
        if (NTrain is int n) f["ntrain"] = n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return f;
    }

    /// <summary>The data a checkpoint was trained on: its run.* fields (written by vae train), else, for runs made by
    /// vae reproduce or the façade, the data set its description names (Frey Face or MNIST).</summary>
    public static DataChoice FromFields(IReadOnlyDictionary<string, string> fields, string? cache, string? freyFace) =>
        new(fields.GetValueOrDefault("run.dataset") ?? (fields.GetValueOrDefault("dataset", "").StartsWith("Frey Face", StringComparison.Ordinal) ? "frey-face" : "mnist"), fields.GetValueOrDefault("run.data-dir"), fields.GetValueOrDefault("run.data-file"), cache, freyFace,
            fields.TryGetValue("run.ntrain", out var n) ? int.Parse(n, System.Globalization.CultureInfo.InvariantCulture) : null);

    public DataSet Load(TextWriter log)
    {
        var options = new DataSetOptions
        {
            CacheDirectory = Cache, FreyFaceSource = FreyFace,
            Progress = new ConsoleDownloadProgress(log), Log = line => log.WriteLine(line),
        };
        var set = Dataset switch
        {
            "mnist" => DataSets.MnistPaper(options),
            "frey-face" => DataSets.FreyFace(options),
            "binarized-mnist" => DataSets.BinarizedMnist(options),
            "idx" => DataSets.FromIdxDirectory(DataDir!),
            _ => DataSets.FromNpy(DataFile!),
        };
        if (NTrain is int n)
        {
            if (n > set.Train.Count) throw new UsageException($"--ntrain: {n} exceeds the {set.Train.Count} training images of {Dataset}");
            set = set.WithFirstTrainingImages(n);
        }
        return set;
    }
}
