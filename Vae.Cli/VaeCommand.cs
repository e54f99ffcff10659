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
            ReproduceVerb.Command(stdout, stderr, cancel),
            SweepVerb.Command(stdout, stderr, cancel),
            ExportVerb.Command(stdout),
            DataVerb.Command(stdout, stderr),
        };
        foreach (var c in PictureVerbs.Commands(stdout, stderr).Concat(BenchVerb.Commands(stdout, stderr))) root.Add(c);
        var version = new Command("version", "The versions of vae and libtorch, the threads and MKL's kernel choice");
        version.SetAction(_ => Version(stdout));
        root.Add(version);
        var help = new Command("help", "Show this help (vae help VERB: the verb's)") { new Argument<string[]>("verb") { Arity = ArgumentArity.ZeroOrMore } };
        root.Add(help); // rewritten to --help before parsing
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
            string first = args.Length > 0 ? args[0] : "";
            // libtorch's per-step tensors are reused instead of mapped and unmapped each step (Torch.retainFreedMemory);
            // the benchmark's reference process keeps glibc's defaults, as a straightforward program would.
            if (first != BenchVerb.ReferenceWorker && Environment.GetEnvironmentVariable("VAE_MALLOC") != "default")
                Vae.TorchRuntime.RetainFreedMemory();
            // MKL's AVX-512 matrix multiplies on AMD CPUs with AVX-512 (Torch.useMklAvx512), before any multiply; the
            // reference process keeps MKL's own dispatch, as a straightforward program would, and so does VAE_MKL=default.
            // `data` and help need no libtorch, so they do not load it.
            if (first is not (BenchVerb.ReferenceWorker or "data" or "") && !args.Contains("--help") && !args.Contains("-h"))
                MklDispatch = Vae.TorchRuntime.ConfigureMkl().Description;
            return Invoke(Root(stdout, stderr, cancel), args, stdout, stderr);
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"vae: {e.Message}");
            return BadUsage;
        }
        catch (Vae.Core.NonFiniteBoundException e)
        {
            stderr.WriteLine($"vae: {e.Message}");
            return Failure;
        }
        catch (System.Runtime.InteropServices.ExternalException e)
        {
            // A libtorch error: its first line says what failed.
            stderr.WriteLine($"vae: libtorch: {e.Message.Split('\n')[0]}");
            return Failure;
        }
        catch (MemoryBudgetException e)
        {
            // Refused before allocating: the estimate and the memory available, in one line.
            stderr.WriteLine($"vae: {e.Message}");
            return BadUsage;
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
    internal static int Invoke(Command command, string[] args, TextWriter stdout, TextWriter stderr)
    {
        var parse = command.Parse(args);
        if (parse.Errors.Count > 0)
        {
            var names = new List<string>();
            for (SymbolResult? r = parse.CommandResult; r is CommandResult c && c.Parent is not null; r = r.Parent) names.Insert(0, c.Command.Name);
            throw new UsageException((names.Count > 0 ? string.Join(" ", names) + ": " : "") + parse.Errors[0].Message);
        }
        return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
    }

    /// <summary>What this process did to MKL's kernel choice (Torch.useMklAvx512), for reports.</summary>
    internal static string MklDispatch { get; private set; } = "MKL's own dispatch";

    static int Version(TextWriter stdout)
    {
        stdout.WriteLine($"vae {typeof(VaeCommand).Assembly.GetName().Version}");
        stdout.WriteLine($"libtorch {Vae.TorchRuntime.LibTorchVersion} ({Vae.TorchRuntime.Threads} threads); {MklDispatch}");
        return Ok;
    }
}
