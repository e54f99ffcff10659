using System.CommandLine;
using System.Globalization;
using Vae.Experiments;

namespace Vae.Cli;

/// <summary><c>vae sweep --seeds 0-7 [train options]</c>: one <c>vae train</c> run per seed in <c>{out}/seed-{S}</c>, here
/// one after another, as local processes (<c>--jobs</c>) or as a Slurm job array, collected into one results.json with
/// the seeds' mean and spread.</summary>
static class SweepVerb
{
    static readonly Option<string> Seeds = new("--seeds")
    {
        Description = "the seeds: ranges and single seeds, comma-separated (0-7, 1,4,9, 0-3,10)", HelpName = "SEEDS", Required = true,
    };
    static readonly Option<string> Out = Opt.Text("--out", "the sweep's directory, one seed-S run directory per seed (default: runs/sweep)", "DIR");
    // The options that are the sweep's, not the training's.
    static readonly Option[] Own = [Seeds, Out, Common.Threads, .. ExecutorVerb.All];

    /// <summary><c>vae sweep</c>.</summary>
    public static Command Command(TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var command = new Command("sweep", "Train the same run for several seeds (vae train's options but --seed, --epochs, --resume) and collect their mean and spread");
        foreach (var o in (Option[])[Seeds, .. TrainVerb.RunSettings, TrainVerb.Samples, TrainVerb.EvalEvery, Out, Common.Threads, .. ExecutorVerb.All]) command.Add(o);
        command.SetAction(p => Run(new Arguments(p), stdout, stderr, cancel));
        return command;
    }

    static int Run(Arguments a, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var seeds = ParseSeeds(a.Get(Seeds));
        long samples = a.Get(TrainVerb.Samples) ?? TrainVerb.DefaultSamples;
        string dir = a.Get(Out) ?? Path.Combine("runs", "sweep");
        var tasks = SeedSweep.Tasks(seeds);
        var executor = new ExecutorVerb(a, "sweep");
        if (executor.Handles(tasks, dir, stdout, stderr, cancel) is int handled) return handled;
        string settings = string.Join(" ", a.OptionsExcept(Own));
        if (a.Get(ExecutorVerb.Collect)) return Collect(dir, seeds, samples, settings, stdout);
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
        string[] threads = a.Get(Common.Threads) is long t ? ["--threads", t.ToString(CultureInfo.InvariantCulture)] : [];
        // A resumed run may be given its budget, evaluation interval and data locations again; the rest is in its checkpoint.
        string[] train = File.Exists(Trainer.CheckpointPath(run))
            ? ["--resume", run, .. a.OptionsExcept([.. Own, .. TrainVerb.RunSettings.Except([Common.Cache, Common.FreyFace])]), .. threads]
            : ["--seed", seed.ToString(CultureInfo.InvariantCulture), "--out", run, .. a.OptionsExcept(Own), .. threads];
        return VaeCommand.Invoke(TrainVerb.Command(stdout, stderr, cancel), train, stdout, stderr);
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
    static IReadOnlyList<long> ParseSeeds(string text)
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
