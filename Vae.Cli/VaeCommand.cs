namespace Vae.Cli;

/// <summary>The <c>vae</c> command: parses arguments and dispatches to a verb.</summary>
public static class VaeCommand
{
    /// <summary>Runs the command; returns the process exit code (0 ok, 1 failure, 2 bad usage, 130 interrupted).</summary>
    public static int Run(string[] args)
    {
        Console.WriteLine(TorchSharp.torch.__version__);
        TorchSharp.torch.InitializeDeviceType(TorchSharp.DeviceType.CPU);
        Console.WriteLine(TorchSharp.torch.ones(3).sum().item<float>());
        return 0;
    }
}
