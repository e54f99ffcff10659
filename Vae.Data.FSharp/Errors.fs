namespace Vae

open System
open System.IO
open System.Runtime.InteropServices

// The data and checkpoint exceptions, in the Vae namespace for every caller.

/// A checkpoint file is corrupt, truncated or does not match what loads it. The message names the file and what differs.
type CheckpointException(file: string, what: string) =
    inherit IOException(sprintf "%s: %s" file what)
    /// The checkpoint file.
    member _.File = file

/// A data file is not what its reader expects. The message names the file, the field and what was expected.
type DataFormatException(file: string, field: string, expected: string, found: string, [<Optional; DefaultParameterValue(null: exn)>] inner: exn) =
    inherit IOException(sprintf "%s: %s: expected %s, found %s" file field expected found, inner)
    /// The file that was read.
    member _.File = file
    /// The field (header part, element or property) that was wrong.
    member _.Field = field
    /// What the reader expected.
    member _.Expected = expected
    /// What the file held.
    member _.Found = found

/// A data file's SHA-256 differs from the recorded one.
type ChecksumMismatchException(file: string, expected: string, actual: string) =
    inherit DataFormatException(file, "SHA-256", expected, actual)

/// A data set could not be acquired from any source. The message lists what was tried.
type DataUnavailableException(dataset: string, attempts: string[]) =
    inherit IOException(sprintf "%s could not be acquired; tried:\n  %s" dataset (String.concat "\n  " attempts))
    /// The data set's name.
    member _.Dataset = dataset
    /// One line per source tried, with why it failed.
    member _.Attempts : string[] = attempts
