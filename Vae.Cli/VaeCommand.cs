using System.CommandLine;
using System.CommandLine.Parsing;
using Vae.Data;

namespace Vae.Cli;

/// <summary>The <c>vae</c> command: parses arguments and dispatches to a verb.</summary>
public static class VaeCommand
{
    /// <summary>Exit codes.</summary>
    public const int Ok = 0, Failure = 1, BadUsage = 2, Interrupted = 130;

    /// <summary>Runs the command with the console; returns the process exit code
    /// (0 ok, 1 failure, 2 bad usage or bad input, 130 interrupted). SIGINT and SIGTERM cancel
    /// training: the current step finishes and a checkpoint is written.</summary>
    public static int Run(string[] args)
    {
        using var cancel = new CancellationTokenSource();
        void Stop(System.Runtime.InteropServices.PosixSignalContext context)
        {
            // A second Ctrl-C terminates at once. TERM never does: a scheduler (Slurm's preemption, requeue) sends it to
            // every process of a job, so it may come twice, from the batch shell and from Slurm; its hard stop is KILL.
            if (cancel.IsCancellationRequested && context.Signal == System.Runtime.InteropServices.PosixSignal.SIGINT) return;
            context.Cancel = true;
            if (cancel.IsCancellationRequested) return;
            Console.Error.WriteLine();
            Console.Error.WriteLine("vae: interrupted; finishing the current step and writing a checkpoint");
            cancel.Cancel();
        }
        using var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, Stop);
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, Stop);
        return Run(args, Console.Out, Console.Error, cancel.Token);
    }

    /// <summary>The <c>vae</c> command tree: one command per verb, its options typed and described; <c>--help</c> on
    /// any of them, <c>--version</c>, and <c>@file</c> response files come from System.CommandLine.</summary>
    public static RootCommand Root(TextWriter stdout, TextWriter stderr, CancellationToken cancel = default)
    {
        var root = new RootCommand("vae: Auto-Encoding Variational Bayes (Kingma & Welling) on TorchSharp")
        {
            TrainVerb.Command(stdout, stderr, cancel),
            EvaluateVerb.Command(stdout, stderr),
            ScoreVerb.Command(stdout, stderr, cancel),
            ReproduceVerb.Command(stdout, stderr, cancel),
            SweepVerb.Command(stdout, stderr, cancel),
            VerifyVerb.Command(stdout, stderr, cancel),
            ExportVerb.Command(stdout),
            ExploreVerb.Command(stdout),
            DataVerb.Command(stdout, stderr),
            PlotVerb.Command(stdout),
        };
        foreach (var c in PictureVerbs.Commands(stdout, stderr)) root.Add(c);
        root.Add(BenchVerb.Command(stdout, stderr));
        var version = new Command("version", "The versions of vae and libtorch, the threads and MKL's kernel choice");
        version.SetAction(_ => Version(stdout));
        root.Add(version);
        var help = new Command("help", "Show this help (vae help VERB: the verb's)") { new Argument<string[]>("verb") { Arity = ArgumentArity.ZeroOrMore } };
        root.Add(help); // rewritten to --help before parsing
        root.Add(NativeTuningSwitch);
        root.SetAction(p =>
        {
            p.RootCommandResult.Command.Parse("--help").Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
            return BadUsage;
        });
        return root;
    }

    /// <summary>Runs the command writing to <paramref name="stdout"/> and <paramref name="stderr"/>.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancel = default)
    {
        try
        {
            if (args is ["help", .. var verb]) args = [.. verb, "--help"];
            var parse = Root(stdout, stderr, cancel).Parse(args);
            // The process-wide speed settings, before any multiply (MKL chooses its kernels once): on unless
            // --native-tuning off (or VAE_MKL=default, VAE_MALLOC=default for one of them). `data`, `plot` and help need no libtorch.
            string verbName = TopVerb(parse);
            if (parse.Errors.Count == 0 && parse.Action is not System.CommandLine.Help.HelpAction && verbName is not ("data" or "plot" or "help" or ""))
                Tuning = NativeTuning.Apply(parse.GetValue(NativeTuningSwitch) == "off" ? new NativeTuningOptions { MklAvx512OnAmd = false, RetainFreedMemory = false }
                                                                                        : NativeTuningOptions.FromEnvironment()).Description;
            return Invoke(parse, stdout, stderr);
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"vae: {e.Message}");
            return BadUsage;
        }
        catch (NonFiniteBoundException e)
        {
            stderr.WriteLine($"vae: {e.Message}");
            return Failure;
        }
        catch (System.Runtime.InteropServices.ExternalException e)
        {
            // A libtorch error: its first line says what failed.
            stderr.WriteLine($"vae: libtorch: {e.Message.Split('\n')[0]}");
            // VAE_TRACE=1: the whole exception, with libtorch's and .NET's stacks, for a report.
            if (Environment.GetEnvironmentVariable("VAE_TRACE") == "1") stderr.WriteLine(e.ToString());
            return Failure;
        }
        catch (MemoryBudgetException e)
        {
            // Refused before allocating: the estimate and the memory available, in one line.
            stderr.WriteLine($"vae: {e.Message}");
            return BadUsage;
        }
        catch (EstimateNotConvergedException e)
        {
            stderr.WriteLine($"vae: {e.Message}");
            return Failure;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException)
        {
            // Bad files and unavailable data: one line, no stack trace.
            stderr.WriteLine($"vae: {e.Message}");
            return BadUsage;
        }
    }

    /// <summary>Parses <paramref name="args"/> for <paramref name="command"/> and runs its action. A parse error is a
    /// <see cref="UsageException"/> naming the command (one line, exit code 2); help goes to <paramref name="stdout"/>.</summary>
    internal static int Invoke(Command command, string[] args, TextWriter stdout, TextWriter stderr) => Invoke(command.Parse(args), stdout, stderr);

    static int Invoke(ParseResult parse, TextWriter stdout, TextWriter stderr)
    {
        if (parse.Errors.Count > 0)
        {
            var names = new List<string>();
            for (SymbolResult? r = parse.CommandResult; r is CommandResult c && c.Parent is not null; r = r.Parent) names.Insert(0, c.Command.Name);
            throw new UsageException((names.Count > 0 ? string.Join(" ", names) + ": " : "") + parse.Errors[0].Message);
        }
        return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
    }

    /// <summary>What this process's native tuning did (MKL's kernels, the allocator), for reports.</summary>
    internal static string Tuning { get; private set; } = "no native tuning";

    /// <summary>--native-tuning on|off: the process-wide speed settings (Vae.NativeTuning), on every verb.</summary>
    static readonly Option<string> NativeTuningSwitch = NativeTuningOption();

    static Option<string> NativeTuningOption()
    {
        var option = Opt.Choice("--native-tuning", "MKL's AVX-512 kernels on AMD CPUs and malloc keeping freed memory (off: the libraries' defaults)", "on", "on", "off");
        option.Recursive = true;
        return option;
    }

    /// <summary>The verb under the root that the command line names ("" for none).</summary>
    static string TopVerb(ParseResult parse)
    {
        SymbolResult? r = parse.CommandResult;
        while (r is CommandResult { Parent: CommandResult { Parent: not null } }) r = r.Parent;
        return r is CommandResult { Parent: not null } c ? c.Command.Name : "";
    }

    static int Version(TextWriter stdout)
    {
        stdout.WriteLine($"vae {typeof(VaeCommand).Assembly.GetName().Version}");
        stdout.WriteLine($"libtorch {Vae.TorchRuntime.LibTorchVersion} ({Vae.TorchRuntime.Threads} threads); {Tuning}");
        return Ok;
    }
}
