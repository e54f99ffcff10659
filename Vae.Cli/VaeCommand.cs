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
          vae data fetch mnist|frey-face [--cache DIR] [--frey-face PATH] [--offline]
          vae data info [--cache DIR]
          vae version
          vae help
        """;

    /// <summary>Runs the command with the console; returns the process exit code
    /// (0 ok, 1 failure, 2 bad usage or bad input, 130 interrupted).</summary>
    public static int Run(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs the command writing to <paramref name="stdout"/> and <paramref name="stderr"/>.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
            {
                stdout.WriteLine(Usage);
                return args.Length == 0 ? BadUsage : Ok;
            }
            return args[0] switch
            {
                "data" => DataVerb.Run(args[1..], stdout, stderr),
                "version" => Version(stdout),
                _ => throw new UsageException($"unknown command '{args[0]}' (try: vae help)"),
            };
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"vae: {e.Message}");
            return BadUsage;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            // Bad files and unavailable data: one line, no stack trace.
            stderr.WriteLine($"vae: {e.Message}");
            return BadUsage;
        }
    }

    static int Version(TextWriter stdout)
    {
        stdout.WriteLine($"vae {typeof(VaeCommand).Assembly.GetName().Version}");
        stdout.WriteLine($"libtorch {Vae.Core.Torch.load()} ({Vae.Core.Torch.threads()} threads)");
        return Ok;
    }
}
