using System.CommandLine;
using System.Globalization;
using Vae.Experiments;

namespace Vae.Cli;

/// <summary><c>vae verify RUN_DIR_OR_RESULTS [--evaluations N]</c>: replays recorded runs from their settings and seeds
/// and compares each evaluation with the record.</summary>
static class VerifyVerb
{
    static readonly Argument<string> Target = new("run") { Description = "a run directory (options.txt, metrics.csv), or an experiment's results.json: every run directory beside it" };
    static readonly Option<long?> Evaluations = Opt.OptionalInteger("--evaluations", "replay the first N recorded evaluations of each run (default: all)", 1, int.MaxValue);

    /// <summary><c>vae verify</c>.</summary>
    public static Command Command(TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var command = new Command("verify", "Replay recorded runs from their settings and seeds and compare each evaluation with the record (exit code 1 when one differs)")
            { Target, Evaluations, Common.Cache, Common.FreyFace };
        command.SetAction(p => Run(p.GetValue(Target)!, new Arguments(p), stdout, stderr, cancel));
        return command;
    }

    static int Run(string target, Arguments a, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        int? evaluations = (int?)a.Get(Evaluations);
        string[] directories = File.Exists(target) && target.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
            ? [.. Directory.GetDirectories(Path.GetDirectoryName(Path.GetFullPath(target))!).Where(RunRecord.Exists).Order(StringComparer.Ordinal)]
            : Directory.Exists(target) ? [target]
            : throw new UsageException($"run: {target}: expected a run directory or a results.json file");
        if (directories.Length == 0) throw new UsageException($"run: {target}: no run directories (with options.txt) beside it");
        bool identical = true;
        foreach (var directory in directories)
        {
            var record = RunRecord.Read(directory);
            var data = DataChoice.FromFields(record.Fields, a.Get(Common.Cache), a.Get(Common.FreyFace)).Load(stderr);
            int count = Math.Min(evaluations ?? int.MaxValue, record.Evaluations.Count);
            stdout.WriteLine($"{directory}: replaying {count} of {record.Evaluations.Count} evaluations ({record.Algorithm.Name()}, seed {record.Options.Seed}, {record.Threads.First} threads{string.Concat(record.Threads.Changes.Select(c => $", then {c.Threads} from {c.FromSamples:N0} samples"))})");
            stdout.WriteLine($"{"samples",12} {"recorded train",15} {"replayed train",15} {"recorded test",14} {"replayed test",14}");
            var progress = new SynchronousProgress<EvaluationComparison>(e => stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{e.SamplesSeen,12:N0} {e.RecordedTrain,15:F4} {e.ReplayedTrain,15:F4} {e.RecordedTest,14:F4} {e.ReplayedTest,14:F4}{(e.Identical ? "" : "  differs")}")));
            var report = RunVerification.Verify(record, data, evaluations, progress, cancel);
            stdout.WriteLine($"{directory}: {report.Verdict}");
            identical &= report.Identical;
        }
        return identical ? VaeCommand.Ok : VaeCommand.Failure;
    }
}

/// <summary>Reports on the reporting thread, in order (<see cref="Progress{T}"/> posts to the thread pool).</summary>
sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
