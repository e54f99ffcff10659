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
    public string CheckpointPath => System.IO.Path.Combine(Path, AevbTrainer.CheckpointFileName);
    string MetricsPath => System.IO.Path.Combine(Path, "metrics.csv");

    /// <summary>Opens (creating) the directory and takes its lock; a second run into it is refused.</summary>
    public static RunDirectory Open(string path)
    {
        Directory.CreateDirectory(path);
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

    public void WriteOptions(AevbTrainer trainer, ImageData train, TrainingOptions options)
    {
        var m = trainer.ModelOptions;
        var a = trainer.Options;
        var text = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"dataset = {trainer.Dataset}")
            .AppendLine(CultureInfo.InvariantCulture, $"train_images = {train.Count}")
            .AppendLine(CultureInfo.InvariantCulture, $"test_images = {options.TestData?.Count ?? 0}")
            .AppendLine(CultureInfo.InvariantCulture, $"input = {m.InputDimension}")
            .AppendLine(CultureInfo.InvariantCulture, $"hidden = {m.HiddenUnits}")
            .AppendLine(CultureInfo.InvariantCulture, $"latent = {m.LatentDimensions}")
            .AppendLine(CultureInfo.InvariantCulture, $"likelihood = {m.Likelihood}")
            .AppendLine(CultureInfo.InvariantCulture, $"dtype = {(m.DoublePrecision ? "float64" : "float32")}")
            .AppendLine(CultureInfo.InvariantCulture, $"estimator = {a.Estimator}")
            .AppendLine(CultureInfo.InvariantCulture, $"samples_per_datapoint = {a.SamplesPerDatapoint}")
            .AppendLine(CultureInfo.InvariantCulture, $"batch = {a.BatchSize}")
            .AppendLine(CultureInfo.InvariantCulture, $"step_size = {a.StepSize}")
            .AppendLine(CultureInfo.InvariantCulture, $"warm_up = {a.WarmUp}")
            .AppendLine(CultureInfo.InvariantCulture, $"regulariser = {a.Regulariser}")
            .AppendLine(CultureInfo.InvariantCulture, $"weight_prior = {a.WeightPrior}")
            .AppendLine(CultureInfo.InvariantCulture, $"binarize = {(a.Binarize ? "dynamic" : "none (grey levels)")}")
            .AppendLine(CultureInfo.InvariantCulture, $"seed = {a.Seed}")
            .AppendLine(CultureInfo.InvariantCulture, $"total_samples = {options.TotalSamples}")
            .AppendLine(CultureInfo.InvariantCulture, $"evaluate_every = {options.EvaluateEvery}")
            .AppendLine(CultureInfo.InvariantCulture, $"threads = {TorchSharp.torch.get_num_threads()}");
        if (options.CheckpointFields is { } extra)
            foreach (var kv in extra) text.AppendLine(CultureInfo.InvariantCulture, $"{kv.Key} = {kv.Value}");
        Vae.Core.Files.writeAtomically(System.IO.Path.Combine(Path, "options.txt"), Encoding.UTF8.GetBytes(text.ToString()));
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
