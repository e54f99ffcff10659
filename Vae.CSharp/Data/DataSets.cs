using Microsoft.FSharp.Core;
using Vae.Core.Data;

namespace Vae.Data;

/// <summary>Progress of a data set download.</summary>
/// <param name="File">The file being fetched.</param>
/// <param name="Received">Bytes received so far.</param>
/// <param name="Total">Total bytes, when known.</param>
public sealed record DownloadProgressInfo(string File, long Received, long? Total);

/// <summary>Where data sets are cached and where else they may come from.</summary>
public sealed class DataSetOptions
{
    /// <summary>The cache directory; null means <c>VAE_DATA_DIR</c>, else the user's cache folder (~/.cache/vae).</summary>
    public string? CacheDirectory { get; init; }
    /// <summary>A Frey Face file, or a directory holding frey_rawface.mat, used when the download fails
    /// (null means the <c>VAE_FREY_FACE</c> environment variable).</summary>
    public string? FreyFaceSource { get; init; }
    /// <summary>Try the canonical download addresses first (default true).</summary>
    public bool AllowDownload { get; init; } = true;
    /// <summary>Receives download progress.</summary>
    public IProgress<DownloadProgressInfo>? Progress { get; init; }
    /// <summary>Receives one line per acquisition step.</summary>
    public Action<string>? Log { get; init; }

    internal DataOptions ToCore() => new(
        CacheDirectory is null ? FSharpOption<string>.None : FSharpOption<string>.Some(CacheDirectory),
        FreyFaceSource is null ? FSharpOption<string>.None : FSharpOption<string>.Some(FreyFaceSource),
        AllowDownload,
        FuncConvert.FromAction<DownloadProgress>(p => Progress?.Report(new DownloadProgressInfo(
            p.File, p.Received, FSharpOption<long>.get_IsSome(p.Total) ? p.Total.Value : null))),
        FuncConvert.FromAction<string>(line => Log?.Invoke(line)));
}

/// <summary>A data set split into training and test images.</summary>
public sealed class DataSet
{
    internal DataSet(DataSplit split)
    {
        Split = split;
        Train = new ImageData(split.Train);
        Test = new ImageData(split.Test);
    }

    internal DataSplit Split { get; }

    /// <summary>The data set's name (mnist, frey-face, idx, npy).</summary>
    public string Name => Split.Name;
    /// <summary>How the split was made.</summary>
    public string Description => Split.Description;
    /// <summary>The training images.</summary>
    public ImageData Train { get; }
    /// <summary>The test images.</summary>
    public ImageData Test { get; }
    /// <summary>The training labels, or null when the data set has none.</summary>
    public byte[]? TrainLabels => FSharpOption<byte[]>.get_IsSome(Split.TrainLabels) ? Split.TrainLabels.Value : null;
    /// <summary>The test labels, or null when the data set has none.</summary>
    public byte[]? TestLabels => FSharpOption<byte[]>.get_IsSome(Split.TestLabels) ? Split.TestLabels.Value : null;

    /// <summary>The same data set with only its first <paramref name="count"/> training images (e.g. the paper's
    /// N_train = 1000 of Figure 3).</summary>
    public DataSet WithFirstTrainingImages(int count)
    {
        if (count < 1 || count > Train.Count) throw new ArgumentOutOfRangeException(nameof(count), count, $"expected 1 to {Train.Count} training images");
        var labels = FSharpOption<byte[]>.get_IsSome(Split.TrainLabels) ? FSharpOption<byte[]>.Some(Split.TrainLabels.Value[..count]) : Split.TrainLabels;
        return new(new DataSplit(Split.Name, Vae.Core.Data.ImagesModule.slice(0, count, Split.Train), Split.Test, labels, Split.TestLabels,
            $"{Split.Description}, first {count} training images"));
    }
}

/// <summary>One cached file of a data set, as <see cref="DataSets.Info"/> reports it.</summary>
/// <param name="DataSet">The data set's name.</param>
/// <param name="Path">The file's path in the cache.</param>
/// <param name="Present">Whether the file is in the cache.</param>
/// <param name="Bytes">Its size, or 0 when absent.</param>
/// <param name="Sha256">Its SHA-256, or null when absent.</param>
/// <param name="ExpectedSha256">The recorded SHA-256 it must have.</param>
public sealed record CachedFileInfo(string DataSet, string Path, bool Present, long Bytes, string? Sha256, string ExpectedSha256)
{
    /// <summary>Whether the file is present and its SHA-256 is the recorded one.</summary>
    public bool Valid => Present && Sha256 == ExpectedSha256;
}

/// <summary>The data sets of the paper and a user's own data: loading, acquisition and cache information.</summary>
public static class DataSets
{
    /// <summary>The data set names <see cref="Fetch"/> accepts.</summary>
    public static IReadOnlyList<string> Known { get; } = ["mnist", "frey-face"];

    /// <summary>MNIST's official split (60,000 training, 10,000 test images), fetched when not cached.</summary>
    public static DataSet Mnist(DataSetOptions? options = null) =>
        new(Vae.Core.Data.Mnist.load((options ?? new()).ToCore()));

    /// <summary>The paper's MNIST training set: the first 50,000 training images, with the official test set.</summary>
    public static DataSet MnistPaper(DataSetOptions? options = null) =>
        new(Vae.Core.Data.Mnist.paperSplit(Vae.Core.Data.Mnist.load((options ?? new()).ToCore())));

    /// <summary>Binarized MNIST, whose bounds are on true log-likelihoods (Burda et al.'s setting): the official split,
    /// the 60,000 training images as grey levels for a fresh binary draw per minibatch (train it with
    /// <see cref="AevbOptions.Binarize"/>), the 10,000 test images binarized once
    /// (<see cref="ImageData.BinarizedOnce"/> with <see cref="ImageData.TestBinarizationSeed"/>).</summary>
    public static DataSet BinarizedMnist(DataSetOptions? options = null) =>
        new(Vae.Core.Data.Mnist.binarised(Vae.Core.Data.Mnist.load((options ?? new()).ToCore())));

    /// <summary>MNIST's training images split 50,000 / 10,000 into training and validation sets.</summary>
    public static DataSet MnistValidation(DataSetOptions? options = null) =>
        new(Vae.Core.Data.Mnist.validationSplit(Vae.Core.Data.Mnist.load((options ?? new()).ToCore())));

    /// <summary>Frey Face (1965 images of 28 x 20, pixels / 256) in a seeded 1700 / 265 split.</summary>
    public static DataSet FreyFace(DataSetOptions? options = null, ulong seed = 0)
    {
        var core = (options ?? new()).ToCore();
        string path = Vae.Core.Data.FreyFace.fetch(core);
        Cache.verify(path, Vae.Core.Data.FreyFace.File.Sha256);
        return new(Vae.Core.Data.FreyFace.split(seed, Vae.Core.Data.FreyFace.read(path)));
    }

    /// <summary>Images in MNIST's IDX layout from <paramref name="directory"/> (train-images-idx3-ubyte and
    /// t10k-images-idx3-ubyte, raw or .gz; label files optional). Format-checked; no known checksum.</summary>
    public static DataSet FromIdxDirectory(string directory) => new(UserData.idxDirectory(directory));

    /// <summary>Every image of one file, unsplit (what <c>vae score --data-file</c> scores): a NumPy .npy file (uint8
    /// scaled by 1/255, or float32; C order) when its name ends in .npy, else an IDX image file (raw or gzip, e.g.
    /// <c>t10k-images-idx3-ubyte.gz</c>; bytes scaled by 1/255). Format errors name the file and field.</summary>
    public static ImageData ReadImages(string path) =>
        new(path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase) ? Vae.Core.Data.Npy.read(path) : Vae.Core.Data.Idx.readImages(path));

    /// <summary>A NumPy .npy file of images (uint8 or float32, C order), split with a seeded permutation.</summary>
    public static DataSet FromNpy(string path, double testFraction = 0.1, ulong seed = 0) =>
        new(UserData.npy(path, testFraction, seed));

    /// <summary>Ensures a data set (<c>mnist</c> or <c>frey-face</c>) is in the cache; returns its cache folder.</summary>
    public static string Fetch(string name, DataSetOptions? options = null)
    {
        var core = (options ?? new()).ToCore();
        return name switch
        {
            "mnist" => Vae.Core.Data.Mnist.fetch(core),
            "frey-face" => System.IO.Path.GetDirectoryName(Vae.Core.Data.FreyFace.fetch(core))!,
            _ => throw new ArgumentException($"unknown data set '{name}': expected one of {string.Join(", ", Known)}", nameof(name)),
        };
    }

    /// <summary>The cache directory the options select.</summary>
    public static string CacheDirectory(DataSetOptions? options = null) => Cache.directory((options ?? new()).ToCore());

    /// <summary>What is cached, where, with sizes and checksums (each file hashed now).</summary>
    public static IReadOnlyList<CachedFileInfo> Info(DataSetOptions? options = null)
    {
        var core = (options ?? new()).ToCore();
        var files = Vae.Core.Data.Mnist.Files.Select(f => ("mnist", System.IO.Path.Combine(Vae.Core.Data.Mnist.directory(core), f.Name), f.Sha256))
            .Append(("frey-face", System.IO.Path.Combine(Vae.Core.Data.FreyFace.directory(core), Vae.Core.Data.FreyFace.File.Name), Vae.Core.Data.FreyFace.File.Sha256));
        return files.Select(f =>
        {
            var info = new FileInfo(f.Item2);
            return info.Exists
                ? new CachedFileInfo(f.Item1, f.Item2, true, info.Length, Cache.sha256File(f.Item2), f.Item3)
                : new CachedFileInfo(f.Item1, f.Item2, false, 0, null, f.Item3);
        }).ToList();
    }
}
