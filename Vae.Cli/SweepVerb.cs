using System.Globalization;
using Vae.Experiments;

namespace Vae.Cli;

/// <summary><c>vae sweep --seeds 0-7 [train options]</c>: one <c>vae train</c> run per seed in <c>{out}/seed-{S}</c>, here
/// one after another, as local processes (<c>--jobs</c>) or as a Slurm job array, collected into one results.json with
/// the seeds' mean and spread.</summary>
static class SweepVerb
{
    // The training options a sweep passes on to every seed's `vae train`.
    static readonly string[] TrainOptions =
        [.. DataChoice.Options, "algorithm", "ntrain", "latent", "hidden", "estimator", "step-size", "batch", "samples", "binarize", "precision", "gradient", "eval-every"];
    // Those a resumed run may be given again (the others are in its checkpoint).
    static readonly string[] ResumeOptions = ["samples", "eval-every", "cache", "frey-face"];

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var a = new Arguments("sweep", args, [.. TrainOptions, "seeds", "out", "threads", "task", .. ExecutorVerb.Valued], ["double", "collect", .. ExecutorVerb.Flags]);
        a.AtMostPositional(0, "sweep");
        var seeds = Seeds(a.String("seeds") ?? throw new UsageException("sweep: --seeds is required (e.g. --seeds 0-7 or --seeds 1,4,9)"));
        long samples = a.Integer("samples", TrainVerb.DefaultSamples, 1);
        string dir = a.String("out") ?? Path.Combine("runs", "sweep");
        var tasks = SeedSweep.Tasks(seeds);
        var executor = new ExecutorVerb(a, "sweep");
        if (executor.Handles(tasks, dir, stdout, stderr, cancel) is int handled) return handled;
        string settings = string.Join(" ", a.OptionsExcept([.. ExecutorVerb.Valued, .. ExecutorVerb.Flags, "seeds", "out", "threads", "task", "collect"]));
        if (a.Has("collect")) return Collect(dir, seeds, samples, settings, stdout);
        if (executor.Task is int task) return Train(a, dir, seeds[task], stdout, stderr, cancel);
        foreach (var seed in seeds)
        {
            stdout.WriteLine($"seed {seed}: {Path.Combine(dir, SeedSweep.RunName(seed))}");
            int code = Train(a, dir, seed, stdout, stderr, cancel);
            if (code != VaeCommand.Ok) return code;
        }
        return Collect(dir, seeds, samples, settings, stdout);
    }

    /// <summary>Trains one seed as <c>vae train</c> would with the sweep's options, continuing its run when it has a checkpoint.</summary>
    static int Train(Arguments a, string dir, long seed, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        string run = Path.Combine(dir, SeedSweep.RunName(seed));
        string[] threads = a.Has("threads") ? ["--threads", a.String("threads")!] : [];
        string[] train = File.Exists(Trainer.CheckpointPath(run))
            ? ["--resume", run, .. a.OptionsExcept([.. TrainOptions.Except(ResumeOptions), "double", "seeds", "out", "threads", "task", "collect", .. ExecutorVerb.Valued, .. ExecutorVerb.Flags]), .. threads]
            : ["--seed", seed.ToString(CultureInfo.InvariantCulture), "--out", run, .. a.OptionsExcept(["seeds", "out", "threads", "task", "collect", .. ExecutorVerb.Valued, .. ExecutorVerb.Flags]), .. threads];
        return TrainVerb.Run(train, stdout, stderr, cancel);
    }

    static int Collect(string dir, IReadOnlyList<long> seeds, long samples, string settings, TextWriter stdout)
    {
        var results = SeedSweep.Collect(dir, seeds, samples, settings);
        stdout.WriteLine($"{"seed",6} {"samples",14} {"train",10} {"test",10}");
        foreach (var r in results.Runs.Where(r => r.Series.Count > 0))
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.Seed,6} {r.Series[^1].SamplesSeen,14:N0} {r.Series[^1].TrainBound,10:F2} {r.Series[^1].TestBound,10:F2}"));
        if (results.Summary.LastOrDefault() is { } end)
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"at {end.SamplesSeen:N0} samples over {end.Seeds} seeds: train {end.TrainMean:F2} (sd {end.TrainSd:F2}), test {end.TestMean:F2} (sd {end.TestSd:F2})"));
        foreach (var name in results.Unfinished) stdout.WriteLine($"unfinished: {name}");
        stdout.WriteLine($"wrote {Path.Combine(dir, "results.json")}");
        return results.Unfinished.Count == 0 ? VaeCommand.Ok : VaeCommand.Failure;
    }

    /// <summary>--seeds: ranges and single seeds, comma-separated ("0-7", "1,4,9", "0-3,10").</summary>
    static IReadOnlyList<long> Seeds(string text)
    {
        var seeds = new List<long>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            var ends = part.Split('-', 2);
            if (!long.TryParse(ends[0], NumberStyles.None, CultureInfo.InvariantCulture, out long from)
                || !long.TryParse(ends[^1], NumberStyles.None, CultureInfo.InvariantCulture, out long to) || to < from || to - from > 10_000)
                throw new UsageException($"--seeds: expected seeds and ranges such as 0-7 or 1,4,9, got '{text}'");
            for (long s = from; s <= to; s++) if (!seeds.Contains(s)) seeds.Add(s);
        }
        return seeds;
    }
}
