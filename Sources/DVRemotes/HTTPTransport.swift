import CCurl
import DVBasics
