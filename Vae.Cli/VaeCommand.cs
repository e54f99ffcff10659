using Vae.Data;

namespace Vae.Cli;

/// <summary>The <c>vae</c> command: parses arguments and dispatches to a verb.</summary>
public static class VaeCommand
{
    /// <summary>Exit codes.</summary>
    public const int Ok = 0, Failure = 1, BadUsage = 2, Interrupted = 130;

    const string Usage = """
        vae: Auto-Encoding Variational Bayes (Kingma & Welling) on TorchSharp

        usage:
          vae train [--algorithm aevb|wake-sleep|mcem] [--ntrain N] [--dataset mnist|frey-face|idx|npy] [--data-dir DIR] [--data-file FILE]
                    [--latent J] [--hidden H] [--estimator a|b] [--step-size S|auto] [--batch M]
                    [--samples N | --epochs E] [--seed S] [--threads T] [--binarize none|dynamic] [--precision float32|bfloat16]
                    [--gradient auto|autograd|hand-derived]
                    [--eval-every N] [--double] [--out DIR | --resume DIR]
          vae evaluate --checkpoint FILE [--estimator elbo|iwae|hmc-marginal] [--k 5000] [--points N]
                       [--posterior-samples 50] [--leapfrog 4] [--burn-in 1000] [--seed S] [--threads T]
                       [--precision float32|bfloat16] [--json]
          vae reproduce figure2 [--dataset mnist|frey-face] [--latent 3,5,10,20,200] [--budget 1e6] [--seed S]
                    [--algorithms aevb,wake-sleep] [--step-size 0.02|auto] [--threads T] [--train-eval N] [--out DIR]
          vae reproduce figure3 [--ntrain 1000] [--budget 2e6] [--evaluations 4] [--points 100] [--burn-in 1000]
                    [--step-size 0.02|auto] [--seed S] [--threads T] [--out DIR]
          vae reproduce manifolds [--dataset mnist|frey-face] [--budget 1e6] [--seed S] [--threads T] [--out DIR]
            figure2 and figure3 run where --executor says: local (default; --jobs N runs N side by side as processes)
            or slurm (one array task per run, then a collector job):
                    [--executor local|slurm] [--jobs N] [--slurm-partition P] [--slurm-time T] [--slurm-cpus-per-task 1]
                    [--slurm-mem M] [--slurm-signal B:TERM@120] [--slurm-arg "sbatch options"] [--wait] [--status]
          vae sweep --seeds 0-7 [vae train's options but --seed, --epochs, --resume] [--out DIR] [executor options as above]
          vae sample --checkpoint FILE [--count 100] [--columns C] [--seed S] [--out sample.png]
          vae reconstruct --checkpoint FILE [--count 10] [--out reconstruct.png]
          vae manifold --checkpoint FILE [--grid 20] [--out manifold.png]   (J = 2 models)
          vae export --checkpoint FILE --format onnx|safetensors [--part encoder|decoder] [--out FILE]
          vae bench [--quick] [--threads 1,2] [--repetitions R] [--steps S]
          vae data fetch mnist|frey-face [--cache DIR] [--frey-face PATH] [--offline]
          vae data info [--cache DIR]
          vae version
          vae help
        """;

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

    /// <summary>Runs the command writing to <paramref name="stdout"/> and <paramref name="stderr"/>.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancel = default)
    {
        try
        {
            if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
            {
                stdout.WriteLine(Usage);
                return args.Length == 0 ? BadUsage : Ok;
            }
            // libtorch's per-step tensors are reused instead of mapped and unmapped each step (Torch.retainFreedMemory);
            // the benchmark's reference process keeps glibc's defaults, as a straightforward program would.
            if (args[0] != BenchVerb.ReferenceWorker && Environment.GetEnvironmentVariable("VAE_MALLOC") != "default")
                Vae.TorchRuntime.RetainFreedMemory();
            // MKL's AVX-512 matrix multiplies on AMD CPUs with AVX-512 (Torch.useMklAvx512), before any multiply; the
            // reference process keeps MKL's own dispatch, as a straightforward program would, and so does VAE_MKL=default.
            // `data` needs no libtorch, so it does not load it.
            if (args[0] is not (BenchVerb.ReferenceWorker or "data")) MklDispatch = Vae.TorchRuntime.ConfigureMkl().Description;
            return args[0] switch
            {
                BenchVerb.ReferenceWorker => BenchVerb.RunReferenceWorker(args[1..], Console.In, stdout),
                "data" => DataVerb.Run(args[1..], stdout, stderr),
                "train" => TrainVerb.Run(args[1..], stdout, stderr, cancel),
                "evaluate" => EvaluateVerb.Run(args[1..], stdout, stderr),
                "reproduce" => ReproduceVerb.Run(args[1..], stdout, stderr, cancel),
                "sweep" => SweepVerb.Run(args[1..], stdout, stderr, cancel),
                "export" => ExportVerb.Run(args[1..], stdout),
                "bench" => BenchVerb.Run(args[1..], stdout, stderr),
                "sample" or "reconstruct" or "manifold" => PictureVerbs.Run(args[0], args[1..], stdout, stderr),
                "version" => Version(stdout),
                _ => throw new UsageException($"unknown command '{args[0]}' (try: vae help)"),
            };
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

    /// <summary>What this process did to MKL's kernel choice (Torch.useMklAvx512), for reports.</summary>
    internal static string MklDispatch { get; private set; } = "MKL's own dispatch";

    static int Version(TextWriter stdout)
    {
        stdout.WriteLine($"vae {typeof(VaeCommand).Assembly.GetName().Version}");
        stdout.WriteLine($"libtorch {Vae.TorchRuntime.LibTorchVersion} ({Vae.TorchRuntime.Threads} threads); {MklDispatch}");
        return Ok;
    }
}
