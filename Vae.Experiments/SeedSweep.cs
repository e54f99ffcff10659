using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Vae.Experiments;

/// <summary>One seed's run of a sweep and its learning curve.</summary>
/// <param name="Seed">The seed.</param>
/// <param name="Directory">Its run directory.</param>
/// <param name="Series">Its evaluations, in order of samples.</param>
public sealed record SeedRun(long Seed, string Directory, IReadOnlyList<EvaluationResult> Series);

/// <summary>The seeds' bounds at one evaluation point: mean and sample standard deviation (NaN below two seeds).</summary>
/// <param name="SamplesSeen">The training samples of the point.</param>
/// <param name="Seeds">How many seeds were evaluated there.</param>
/// <param name="TrainMean">Mean training bound.</param>
/// <param name="TrainSd">Standard deviation of the training bound over seeds.</param>
/// <param name="TestMean">Mean test bound.</param>
/// <param name="TestSd">Standard deviation of the test bound over seeds.</param>
public sealed record SeedSummary(long SamplesSeen, int Seeds, double TrainMean, double TrainSd, double TestMean, double TestSd);

/// <summary>What a seed sweep produced: the training settings shared by every seed, each seed's curve, their mean and
/// spread at every evaluation point, and the seeds that did not reach the budget.</summary>
/// <param name="Settings">The training options shared by the seeds, as given (e.g. "--latent 3 --samples 1e6").</param>
/// <param name="Budget">Training samples per seed.</param>
/// <param name="Runs">Every seed's run.</param>
/// <param name="Summary">Mean and spread over seeds per evaluation point.</param>
/// <param name="Unfinished">Seeds short of the budget, with the samples they reached.</param>
/// <param name="Machine">The machine the results were collected on.</param>
/// <param name="Commit">The source commit of the program, when the build recorded it.</param>
public sealed record SweepResults(string Settings, long Budget, IReadOnlyList<SeedRun> Runs, IReadOnlyList<SeedSummary> Summary,
                                  IReadOnlyList<string> Unfinished, MachineFacts Machine, string? Commit)
{
    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The results as JSON (snake_case fields).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads results written by <see cref="Save"/>.</summary>
    public static SweepResults FromJson(string json) =>
        JsonSerializer.Deserialize<SweepResults>(json, Json) ?? throw new InvalidDataException("sweep results: expected a JSON object");

    /// <summary>Writes the JSON to <paramref name="path"/> atomically.</summary>
    public void Save(string path) => Vae.Core.Files.writeAtomically(path, System.Text.Encoding.UTF8.GetBytes(ToJson()));
}

/// <summary>A seed study: the same training run under several seeds, each in <c>seed-{S}</c> of the sweep directory, one
/// task per seed (trained in turn here, or as a Slurm job array by <see cref="SlurmExecutor"/>), collected into one
/// results.json with the seeds' mean and spread.</summary>
public static class SeedSweep
{
    /// <summary>The sweep's runs, one per seed, in the order given.</summary>
    public static IReadOnlyList<ExperimentTask> Tasks(IReadOnlyList<long> seeds)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        if (seeds.Count == 0) throw new ArgumentException("seeds: expected at least one", nameof(seeds));
        if (seeds.Distinct().Count() != seeds.Count) throw new ArgumentException("seeds: expected each seed once", nameof(seeds));
        return [.. seeds.Select((s, i) => new ExperimentTask(i, RunName(s)))];
    }

    /// <summary>The run directory's name of a seed.</summary>
    public static string RunName(long seed) => string.Create(CultureInfo.InvariantCulture, $"seed-{seed}");

    /// <summary>Reads every seed's metrics under <paramref name="directory"/> (as far as each got), summarises them per
    /// evaluation point, and writes <c>results.json</c> there.</summary>
    public static SweepResults Collect(string directory, IReadOnlyList<long> seeds, long budget, string settings)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        var runs = seeds.Select(s => new SeedRun(s, Path.Combine(directory, RunName(s)), Vae.RunRecord.ReadEvaluations(Path.Combine(directory, RunName(s), "metrics.csv")))).ToList();
        var summary = runs.SelectMany(r => r.Series).GroupBy(e => e.SamplesSeen).OrderBy(g => g.Key)
            .Select(g =>
            {
                var (trainMean, trainSd) = MeanAndSd([.. g.Select(e => e.TrainBound)]);
                var (testMean, testSd) = MeanAndSd([.. g.Select(e => e.TestBound)]);
                return new SeedSummary(g.Key, g.Count(), trainMean, trainSd, testMean, testSd);
            }).ToList();
        var unfinished = runs.Where(r => (r.Series.LastOrDefault()?.SamplesSeen ?? 0) < budget)
            .Select(r => string.Create(CultureInfo.InvariantCulture, $"{RunName(r.Seed)} ({r.Series.LastOrDefault()?.SamplesSeen ?? 0:N0} of {budget:N0} samples)")).ToList();
        var results = new SweepResults(settings, budget, runs, summary, unfinished, MachineFacts.Current(), ExperimentResults.BuildCommit);
        Directory.CreateDirectory(directory);
        results.Save(Path.Combine(directory, "results.json"));
        return results;
    }

    /// <summary>The mean and the sample standard deviation (n − 1; NaN for one value).</summary>
    public static (double Mean, double Sd) MeanAndSd(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0) return (double.NaN, double.NaN);
        double mean = values.Average();
        return (mean, values.Count < 2 ? double.NaN : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1)));
    }
}
